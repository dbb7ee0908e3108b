/**
 * Live encoding end to end: the encoder follows a call while it runs (its Ogg grows in the
 * store's temp path), the recording is stored soon after BYE, a daemon killed mid-call
 * recovers the call from its spool (the partial Ogg is discarded), and an encoder slowed on
 * purpose loses no recording and finishes them in hang-up order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, BIN, type DaemonHandle } from '../support/daemon.js';
import { startCall } from '../support/recorded-call.js';
import { SipTestClient } from '../support/sip-client.js';
import { closeAll, sleep, startAll, tonesForAnswer } from '../support/legs.js';
import { rsMetadata, siprecMultipart, siprecSdp } from '../support/siprec-body.js';
import { decodeWithFfmpeg, ffprobe, tonePower } from '../support/audio.js';
import { fixtureMeta, linearToUlaw } from '../support/spool-fixture.js';
import { tempDir } from '../support/cleanup.js';
import { readSpool } from '../../src/spool/reader.js';
import { RecordType } from '../../src/spool/format.js';
import { SpoolWriter } from '../../src/spool/writer.js';
import { EncoderPool } from '../../src/encoder/pool.js';
import { Finaliser } from '../../src/calls/finaliser.js';
import { parseConfigText } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { RecordingEntry } from '../../src/types.js';
import { FsAudioStore } from '../../src/storage/fs-store.js';

const daemons: DaemonHandle[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) {
    await d.kill();
    removeDir(d.dir);
  }
});

async function daemon(): Promise<DaemonHandle> {
  const d = await startDaemon();
  daemons.push(d);
  return d;
}

function show(d: DaemonHandle, id: string): Record<string, unknown> {
  return JSON.parse(execFileSync(process.execPath, [BIN, 'recordings', 'show', id, '--json', '--config', d.configFile], { encoding: 'utf8' })) as Record<string, unknown>;
}

/** Partial Ogg files being staged for the audio store (dot files under `recordings/.staging/`), with their sizes. */
function partials(root: string): Array<{ path: string; size: number }> {
  const out: Array<{ path: string; size: number }> = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith('.') && e.name.endsWith('.staged')) out.push({ path: p, size: statSync(p).size });
    }
  };
  walk(join(root, 'recordings'));
  return out;
}

/** Resolves once a partial Ogg file holds more than `bytes` (the encoder is following the call). */
async function partialGrows(root: string, bytes: number, timeoutMs = 20_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const p = partials(root).find((f) => f.size > bytes);
    if (p) return p.path;
    if (Date.now() > until) throw new Error(`no partial recording above ${bytes} bytes in ${timeoutMs} ms`);
    await sleep(100);
  }
}

describe('live encoding', () => {
  it('encodes a call while it runs and stores it soon after BYE', async () => {
    const d = await daemon();
    const call = await startCall(d, '+358401234567', '1001');
    // The Ogg grows while the call runs: the encoder follows the spool.
    const partial = await partialGrows(join(d.dir, 'data'), 2000);
    const before = statSync(partial).size;
    await sleep(1500);
    expect(statSync(partial).size).toBeGreaterThan(before);
    const byeAt = Date.now();
    const id = await call.hangUp();
    const storedAfterMs = Date.now() - byeAt;
    const stored = d.logs.find((l) => l.msg === 'recording stored' && l.recording === id)!;
    // A generous bound (the bench measures the real figure): only the tail is left at BYE.
    expect(storedAfterMs).toBeLessThanOrEqual(10_000);
    expect(stored.finaliseMs as number).toBeLessThanOrEqual(10_000);
    const entry = show(d, id);
    expect(entry.status).toBe('complete');
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', entry.file as string));
    expect(tonePower(pcm.channels[0]!, 8000, 440, 4000, 12000)).toBeGreaterThan(0.5);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, 4000, 12000)).toBeGreaterThan(0.5);
    expect(partials(join(d.dir, 'data'))).toEqual([]);
    // The metrics page carries the encoder's figures.
    const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^tallenne_finalise_seconds_count 1$/m);
    expect(metrics).toMatch(/^tallenne_encoder_live_calls\{worker="0"\} 0$/m);
    expect(metrics).toMatch(/^tallenne_encoder_lag_seconds /m);
  });

  it('recovers a call killed mid-call, while it was being encoded live, as truncated with all the spooled audio', async () => {
    const d = await daemon();
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata('+358501112233', '1001'));
    const res = await client.invite({ body, contentType, headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const legs = await tonesForAnswer(res.body.toString());
    startAll(legs);
    const partial = await partialGrows(join(d.dir, 'data'), 1000);
    await sleep(1000);
    await d.kill();
    closeAll(legs);
    client.close();
    expect(existsSync(partial)).toBe(true);

    // What the spool holds is what the recording must hold.
    const spools = readdirSync(join(d.dir, 'data', 'spool')).filter((f) => f.endsWith('.spool'));
    expect(spools).toHaveLength(1);
    let answeredAt = NaN;
    let lastRtp = -Infinity;
    await readSpool(join(d.dir, 'data', 'spool', spools[0]!), (r) => {
      if (r.type === RecordType.Meta && Number.isNaN(answeredAt)) answeredAt = (JSON.parse(r.payload.toString()) as { answeredAt: number }).answeredAt;
      if (r.type === RecordType.Rtp) lastRtp = Math.max(lastRtp, r.time);
    });
    const spooledSec = (lastRtp - answeredAt) / 1000;

    const again = await startDaemon({ dir: d.dir, configText: readFileSync(d.configFile, 'utf8') });
    daemons.push(again);
    const stored = await again.waitForLog((l) => l.msg === 'recording stored');
    const entry = show(again, stored.recording as string);
    expect(entry.status).toBe('truncated');
    expect(partials(join(d.dir, 'data'))).toEqual([]);
    const file = join(d.dir, 'data', entry.file as string);
    expect(Math.abs(ffprobe(file).durationSec - spooledSec)).toBeLessThan(0.1);
    const pcm = decodeWithFfmpeg(file);
    // The tones run to the end of what was spooled, past where the partial file had got to.
    const n = pcm.channels[0]!.length;
    expect(tonePower(pcm.channels[0]!, 8000, 440, n - 6000, n - 1000)).toBeGreaterThan(0.5);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, n - 6000, n - 1000)).toBeGreaterThan(0.5);
  });

  it('loses no recording and keeps hang-up order when the encoder is slowed down', { timeout: 120_000 }, async () => {
    const dir = tempDir('live-overload');
    const config = parseConfigText(`[storage]\ndir = "${dir}"\n`, join(dir, 'tallenne.toml')).config;
    const pool = new EncoderPool({ workers: 1, workerUrl: new URL('../support/slow-encoder-worker.mjs?delay=150', import.meta.url) });
    const stored: RecordingEntry[] = [];
    const finaliser = new Finaliser({ config: () => config, log: createLogger('silent'), encoder: pool, index: { put: async (e) => void stored.push(e) }, store: new FsAudioStore(dir), spoolDir: dir });
    const order: string[] = [];
    finaliser.on('recorded', (e) => order.push(e.id));
    let maxLagMs = 0;
    try {
      // Eight calls written as capture writes them (20 ms packets, flushed in batches), each
      // two legs of PCMU, ending one after another.
      const calls = Array.from({ length: 8 }, (_, i) => {
        const id = `01JLIVEOVERLOAD00000000000${i}`;
        const path = join(dir, `${id}.spool`);
        const answeredAt = Date.now();
        const w = new SpoolWriter(path);
        w.appendMeta(answeredAt, { ...fixtureMeta({ id, legs: [{ index: 0, channel: 0, codec: 'PCMU' }, { index: 1, channel: 1, codec: 'PCMU' }] }, answeredAt) });
        finaliser.follow({ id, spoolPath: path });
        return { id, path, w, answeredAt, packets: 0, endAfter: 4000 + i * 250 };
      });
      const payload = Buffer.alloc(172);
      payload[0] = 0x80;
      for (let k = 12; k < 172; k++) payload[k] = linearToUlaw(Math.round(8000 * Math.sin((2 * Math.PI * 440 * k) / 8000)));
      const ended: string[] = [];
      while (ended.length < calls.length) {
        await sleep(100);
        const now = Date.now();
        for (const c of calls) {
          if (ended.includes(c.id)) continue;
          while (c.answeredAt + c.packets * 20 <= Math.min(now, c.answeredAt + c.endAfter)) {
            for (const leg of [0, 1]) {
              payload.writeUInt16BE(c.packets & 0xffff, 2);
              payload.writeUInt32BE(c.packets * 160, 4);
              payload.writeUInt32BE(0x1000 + leg, 8);
              c.w.appendPacket(RecordType.Rtp, leg, c.answeredAt + c.packets * 20, payload);
            }
            c.packets++;
          }
          c.w.flush();
          if (now >= c.answeredAt + c.endAfter) {
            ended.push(c.id);
            finaliser.take({ id: c.id, spoolPath: c.path, closed: c.w.close({ endedAt: c.answeredAt + c.endAfter, reason: 'bye' }) });
          }
        }
        maxLagMs = Math.max(maxLagMs, pool.maxLagMs);
      }
      await finaliser.settled();
      expect(order).toEqual(ended);
      expect(stored.map((e) => [e.status, e.durationMs])).toEqual(calls.map((c) => ['complete', c.endAfter]));
      for (const c of calls) expect(existsSync(c.path)).toBe(false);
      // The slowed worker did fall behind (so ended calls were finished first).
      expect(maxLagMs).toBeGreaterThan(1000);
    } finally {
      finaliser.close();
      await pool.destroy();
    }
  });
});
