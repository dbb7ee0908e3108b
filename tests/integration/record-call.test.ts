/**
 * The vertical slice: a SIPREC client calls the real daemon over loopback, sends two PCMU
 * legs with different tones, hangs up; the recording is a valid stereo Ogg Opus file with
 * the caller on the left and the agent on the right, indexed with a masked number, and the
 * clear number is nowhere on disk or in the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, BIN, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { tonesForAnswer, startAll, closeAll, sleep } from '../support/legs.js';
import { siprecMultipart, siprecSdp, rsMetadata, AINO_AGENT_TOML } from '../support/siprec-body.js';
import { decodeWithFfmpeg, ffprobe, opusinfo, tonePower } from '../support/audio.js';

const CUSTOMER = '+358401234567';

function cli(d: DaemonHandle, ...args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args, '--config', d.configFile], { encoding: 'utf8' });
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe('recording a SIPREC call end to end', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({ extraToml: AINO_AGENT_TOML });
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('answers, captures both legs, and stores a stereo Opus file with masked metadata', async () => {
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata(CUSTOMER, '1001'));
    const res = await client.invite({ body, contentType, headers: ['Require: siprec', 'Accept: application/sdp, application/rs-metadata'] });
    expect(res.status).toBe(200);
    const answeredAt = Date.now();
    const media = answerMedia(res.body.toString());
    expect(media).toHaveLength(2);
    expect(media.map((m) => m.label)).toEqual(['1', '2']);
    expect(media.every((m) => m.direction === 'recvonly')).toBe(true);
    expect(media[0]!.payloadTypes[0]).toBe(0);

    // 440 Hz from the caller's stream, 1000 Hz from the agent's.
    const legs = await tonesForAnswer(res.body.toString());
    startAll(legs);
    await sleep(3000);
    closeAll(legs);
    const bye = await client.bye();
    const byeAt = Date.now();
    expect(bye.status).toBe(200);
    client.close();

    const stored = await d.waitForLog((l) => l.msg === 'recording stored');
    const id = stored.recording as string;
    const show = JSON.parse(cli(d, 'recordings', 'show', id, '--json')) as Record<string, unknown>;
    expect(show.id).toBe(id);
    expect(show.status).toBe('complete');
    expect(show.customerNumber).toBe('+358401234***');
    expect(show.agent).toBe('Aino Agentti');
    // Each leg is rated (G.107 E-model): clean loopback audio rates above 4.
    for (const leg of show.legs as Array<{ mos?: number }>) expect(leg.mos).toBeGreaterThan(4);
    expect(cli(d, 'recordings', 'show', id)).toMatch(/^mos\s+(customer|agent) \d\.\d\d, (customer|agent) \d\.\d\d$/m);
    const list = JSON.parse(cli(d, 'recordings', 'list', '--json')) as Array<Record<string, unknown>>;
    expect(list.map((r) => r.id)).toContain(id);
    for (const k of ['id', 'startedAt', 'endedAt', 'durationMs', 'status', 'customerNumber', 'serviceNumber', 'agent', 'file']) expect(list[0]).toHaveProperty(k);

    const file = join(d.dir, 'data', show.file as string);
    expect(show.file).toMatch(/^recordings\/\d{4}\/\d{2}\/\d{2}\/[0-9A-Z]{26}\.opus$/);
    expect(statSync(file).size).toBeGreaterThan(1000);
    expect(opusinfo(file).status).toBe(0);
    const probe = ffprobe(file);
    expect(probe.codec).toBe('opus');
    expect(probe.channels).toBe(2);
    const clientMs = byeAt - answeredAt;
    expect(Math.abs(probe.durationSec * 1000 - (show.durationMs as number))).toBeLessThan(60);
    expect(Math.abs(probe.durationSec * 1000 - clientMs)).toBeLessThan(60);

    const pcm = decodeWithFfmpeg(file);
    const from = 8000 * 0.5;
    const to = 8000 * 2.5;
    const [left, right] = pcm.channels;
    expect(tonePower(left!, 8000, 440, from, to)).toBeGreaterThan(0.5);
    expect(tonePower(left!, 8000, 1000, from, to)).toBeLessThan(0.05);
    expect(tonePower(right!, 8000, 1000, from, to)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 440, from, to)).toBeLessThan(0.05);

    // No clear number (in any common form) on disk or in the logs.
    const forms = [CUSTOMER, '358401234567', '0401234567', '401234567'];
    for (const f of filesUnder(d.dir)) {
      if (f.endsWith('tallenne.toml')) continue;
      const bytes = readFileSync(f);
      for (const form of forms) expect(bytes.includes(Buffer.from(form)), `${form} in ${f}`).toBe(false);
    }
    for (const form of forms) expect(d.output().includes(form)).toBe(false);
    expect(d.output().includes('Asiakas Testinen')).toBe(false);
  });
});
