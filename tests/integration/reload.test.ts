/**
 * SIGHUP to a running daemon changes every reloadable key of the reload table
 * (src/config/reload.ts), and each change is seen to take effect: the capacity (503 at the
 * new limit), the inactivity timeout, the log level, DTMF masking, the encoder settings, the
 * agents directory and roles, the retention period, the purge interval (purges at the new
 * pace), the free-space floor (503 disk_low) and the shutdown deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, makeConfig, type DaemonHandle, type LogLine } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { offerSdp } from '../support/rs-metadata.js';
import { sleep } from '../support/legs.js';
import { storedEntry } from '../support/index-reader.js';
import { RELOAD_TABLE } from '../../src/config/reload.js';
import type { RecordingEntry } from '../../src/types.js';

const DAY_MS = 86_400_000;

const BEFORE = `
[encoder]
complexity = 5
[retention]
audio = "30 days"
purge_interval = "1h"
[tls]
certificate_file = "tls/2025.crt"
key_file = "tls/2025.key"
ca_file = "tls/ca-2025.crt"
`;

const AFTER = `
[encoder]
complexity = 2
bitrate = 8000
skip_silence = false
[roles]
service_numbers = ["+358201234567"]
internal_pattern = "^9\\\\d{3}$"
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["1001"]
team = "helpdesk"
[retention]
audio = "90 days"
purge_interval = "1s"
[api]
max_export = 3
rate_limit = 600
login_rate_limit = 2
[access]
review_after = "30 days"
[tls]
certificate_file = "tls/2026.crt"
key_file = "tls/2026.key"
ca_file = "tls/ca-2026.crt"
`;

async function purgeRuns(d: DaemonHandle): Promise<number> {
  const page = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  return Number(/^tallenne_retention_purge_runs_total (\d+)$/m.exec(page)![1]);
}

interface Call {
  readonly client: SipTestClient;
  readonly status: number;
  readonly sender?: RtpSender;
}

/** A plain SIP call from a customer to extension 1001, dialled as the service number. */
async function call(d: DaemonHandle, opts: { rtp: boolean }): Promise<Call> {
  const client = new SipTestClient('udp', d.udpPort);
  await client.open();
  const res = await client.invite({
    body: offerSdp(['1']), contentType: 'application/sdp',
    from: '"Asiakas" <sip:+358401234567@carrier.example>',
    to: '<sip:1001@127.0.0.1>',
    uri: `sip:+358201234567@127.0.0.1:${d.udpPort}`,
  });
  if (res.status !== 200 || !opts.rtp) return { client, status: res.status };
  const sender = new RtpSender({ port: answerMedia(res.body.toString())[0]!.port, toneHz: 440 });
  await sender.open();
  sender.start();
  return { client, status: res.status, sender };
}

describe('SIGHUP applies every reloadable key', () => {
  let d: DaemonHandle;
  const since = (line: LogLine) => (l: LogLine) => d.logs.indexOf(l) > d.logs.indexOf(line);

  /** Ends a call with a DTMF digit in it; resolves with its stored entry. */
  async function recordedCall(): Promise<RecordingEntry> {
    const mark = d.logs.length;
    const c = await call(d, { rtp: true });
    expect(c.status).toBe(200);
    const id = (await d.waitForLog((l) => l.msg === 'call answered' && d.logs.indexOf(l) >= mark)).recording as string;
    await sleep(600);
    await c.sender!.sendEvent(5, 200);
    await sleep(1400);
    c.sender!.close();
    expect((await c.client.bye()).status).toBe(200);
    c.client.close();
    await d.waitForLog((l) => l.msg === 'recording stored' && l.recording === id, 30_000);
    return storedEntry(join(d.dir, 'data'), id);
  }

  const reload = async (text: string): Promise<LogLine> => {
    writeFileSync(d.configFile, text);
    const seen = new Set(d.logs.filter((l) => l.msg === 'config reloaded'));
    const line = d.waitForLog((l) => l.msg === 'config reloaded' && !seen.has(l));
    d.proc.kill('SIGHUP');
    return line;
  };

  beforeAll(async () => {
    d = await startDaemon({ extraToml: BEFORE });
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('each change is seen to take effect', async () => {
    const before = await recordedCall();
    expect(before.dtmf.map((x) => x.digit)).toEqual(['5']);
    expect([before.agentId, before.serviceNumber]).toEqual([undefined, undefined]);
    expect((Date.parse(before.retention!.audioExpiresAt) - Date.parse(before.endedAt)) / DAY_MS).toBe(30);
    expect(d.logs.find((l) => l.msg === 'recording stored' && l.recording === before.id)!.encoder).toEqual({ complexity: 5, bitrate: 24000, skipSilence: true, maskDtmf: false });
    expect(d.logs.some((l) => l.msg === 'first rtp packet' && l.recording === before.id)).toBe(true);

    const runsBefore = await purgeRuns(d);
    const text = makeConfig(d.dir, d.rtpRange, AFTER)
      .replace('[calls]\nshutdown_deadline = "5s"', '[calls]\nmax_concurrent = 1\nshutdown_deadline = "1s"')
      .replace('[rtp]\n', '[rtp]\ninactivity_timeout = "1s"\n')
      .replace('min_free = "1MiB"', 'min_free = "2MiB"')
      .replace('[privacy]\n', '[privacy]\nmask_dtmf = true\n')
      .replace('level = "debug"', 'level = "info"');
    const reloaded = await reload(text);
    expect((reloaded.changed as string[]).sort()).toEqual([
      'access.review_after', 'agents', 'api.login_rate_limit', 'api.max_export', 'api.rate_limit', 'calls.max_concurrent', 'calls.shutdown_deadline', 'encoder.bitrate', 'encoder.complexity', 'encoder.skip_silence',
      'log.level', 'privacy.mask_dtmf', 'retention.audio', 'retention.purge_interval', 'roles.internal_pattern', 'roles.service_numbers',
      'rtp.inactivity_timeout', 'storage.min_free',
      // Taken without a tls: listener here; the new certificate served after a SIGHUP is
      // shown in sip-tls.test.ts.
      'tls.ca_file', 'tls.certificate_file', 'tls.key_file',
    ]);
    expect(reloaded.needRestart).toEqual([]);
    // Every row of the reload table was changed by this file, but [http.tls]: its keys exist
    // only with HTTPS on (a mode change needs a restart); the new certificate served after a
    // SIGHUP is shown in http-tls.test.ts.
    for (const { path } of RELOAD_TABLE.filter((r) => !r.path.startsWith('http.tls.'))) expect((reloaded.changed as string[]).some((p) => p === path || p.startsWith(`${path}.`)), path).toBe(true);

    // api.login_rate_limit = 2: the third failed login from this address is cut off. (The API
    // reads max_export, rate_limit and review_after from the same config per request.)
    const login = () => fetch(`http://127.0.0.1:${d.httpPort}/api/v1/session`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'tln.nobody.wrong' }),
    }).then((r) => r.status);
    expect([await login(), await login(), await login()]).toEqual([401, 401, 429]);

    // The purge job now runs every second (it had not run once at its hourly pace).
    expect(runsBefore).toBe(0);
    expect(d.logs.some((l) => l.msg === 'purge interval changed' && l.intervalMs === 1000)).toBe(true);
    while (await purgeRuns(d) < 2) await sleep(250);

    // max_concurrent = 1: a call without RTP takes the one place; the next INVITE gets 503.
    const silent = await call(d, { rtp: false });
    expect(silent.status).toBe(200);
    const second = await call(d, { rtp: false });
    expect(second.status).toBe(503);
    second.client.close();
    expect((await d.waitForLog((l) => l.msg === 'INVITE rejected' && since(reloaded)(l))).why).toBe('capacity');
    // inactivity_timeout = 1 s: the silent call is ended by the daemon with a BYE.
    await silent.client.waitFor((m) => m.kind === 'request' && m.method === 'BYE');
    silent.client.close();
    const timedOut = await d.waitForLog((l) => l.msg === 'recording stored' && since(reloaded)(l));
    expect((await storedEntry(join(d.dir, 'data'), timedOut.recording as string)).endReason).toBe('rtp-timeout');

    const after = await recordedCall();
    // privacy.mask_dtmf, agents and roles, retention.audio.
    expect(after.dtmf.map((x) => x.digit)).toEqual(['*masked*']);
    expect([after.agentId, after.team, after.serviceNumber, after.direction]).toEqual(['aino', 'helpdesk', '+358201234567', 'inbound']);
    expect((Date.parse(after.retention!.audioExpiresAt) - Date.parse(after.endedAt)) / DAY_MS).toBe(90);
    // The encoder settings: used for this recording, and the lower bitrate gives a smaller file.
    expect(d.logs.find((l) => l.msg === 'recording stored' && l.recording === after.id)!.encoder).toEqual({ complexity: 2, bitrate: 8000, skipSilence: false, maskDtmf: true });
    expect(after.fileBytes / after.durationMs).toBeLessThan((before.fileBytes / before.durationMs) * 0.7);
    // log.level = info: the receiver's debug lines are gone.
    expect(d.logs.some((l) => l.msg === 'first rtp packet' && l.recording === after.id)).toBe(false);

    // storage.min_free above the disk's free space (and room for more calls): 503 disk_low.
    // A live call goes on.
    const live = await call(d, { rtp: true });
    expect(live.status).toBe(200);
    const floor = await reload(text.replace('min_free = "2MiB"', 'min_free = "1000TiB"').replace('max_concurrent = 1', 'max_concurrent = 5'));
    expect((floor.changed as string[]).sort()).toEqual(['calls.max_concurrent', 'storage.min_free']);
    const refused = await call(d, { rtp: false });
    expect(refused.status).toBe(503);
    refused.client.close();
    expect((await d.waitForLog((l) => l.msg === 'INVITE rejected' && since(floor)(l))).why).toBe('disk_low');

    // calls.shutdown_deadline = 1 s: SIGTERM ends the live call with a BYE after a second.
    const exit = d.stop();
    const stopping = await d.waitForLog((l) => l.msg === 'stopping: new calls are refused');
    expect(stopping.deadlineMs).toBe(1000);
    await live.client.waitFor((m) => m.kind === 'request' && m.method === 'BYE');
    live.sender!.close();
    live.client.close();
    expect(await exit).toBe(0);
    const last = d.logs.filter((l) => l.msg === 'recording stored').at(-1)!;
    expect((await storedEntry(join(d.dir, 'data'), last.recording as string)).endReason).toBe('shutdown');
  });
});
