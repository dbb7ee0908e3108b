/**
 * Operations against the real daemon: /metrics after a recorded call (exact deltas, promtool
 * lint, every series the dashboard and alert rules read), /healthz and /readyz, SIGHUP
 * reloads of the retention policy (applied; a broken file rejected), and the free-space
 * floor (503, with the reason in the log, the metrics and /readyz).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricsInPromQl } from '../support/promql.js';
import { startDaemon, removeDir, makeConfig, randomRtpRange, BIN, REPO, type DaemonHandle, type LogLine } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { tempDir } from '../support/cleanup.js';

const DAY_MS = 86_400_000;

async function get(d: DaemonHandle, path: string): Promise<{ status: number; body: string; type: string }> {
  const r = await fetch(`http://127.0.0.1:${d.httpPort}${path}`);
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') ?? '' };
}

/** Sample lines of an exposition page, keyed by `name{labels}` exactly as printed. */
function samples(page: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of page.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

function sample(page: Map<string, number>, key: string): number {
  const v = page.get(key);
  if (v === undefined) throw new Error(`no sample ${key} on /metrics`);
  return v;
}

/** PromQL of every dashboard target and every alert rule. */
function queriedExpressions(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  const dash = JSON.parse(readFileSync(join(REPO, 'deploy/grafana/tallenne-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  for (const p of dash.panels) for (const t of p.targets ?? []) out.push({ where: `dashboard "${p.title}"`, expr: t.expr });
  const lines = readFileSync(join(REPO, 'deploy/prometheus/tallenne-alerts.yml'), 'utf8').split('\n');
  let alert = '';
  for (let i = 0; i < lines.length; i++) {
    alert = /^\s*- alert:\s*(\S+)/.exec(lines[i]!)?.[1] ?? alert;
    const e = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!e) continue;
    if (e[2]!.trim() !== '|') {
      out.push({ where: `alert ${alert}`, expr: e[2]! });
      continue;
    }
    const body: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > e[1]!.length)) body.push(lines[++i]!);
    out.push({ where: `alert ${alert}`, expr: body.join('\n') });
  }
  return out;
}

/** Polls until check() is true (for state the daemon exposes but does not log). */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface LiveCall {
  readonly client: SipTestClient;
  readonly senders: RtpSender[];
  readonly status: number;
  sent(): number;
  /** Stops media, hangs up, and resolves with the stored recording's id. */
  finish(): Promise<string>;
}

/** Places a SIPREC call over UDP and starts both legs' RTP. */
async function startCall(d: DaemonHandle): Promise<LiveCall> {
  const client = new SipTestClient('udp', d.udpPort);
  await client.open();
  const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata('+358401234567', '1001'));
  const res = await client.invite({ body, contentType, headers: ['Require: siprec'] });
  const senders: RtpSender[] = [];
  if (res.status === 200) {
    for (const [i, m] of answerMedia(res.body.toString()).entries()) {
      const s = new RtpSender({ port: m.port, toneHz: i === 0 ? 440 : 1000 });
      await s.open();
      s.start();
      senders.push(s);
    }
  }
  const seenStored = new Set(d.logs.filter((l) => l.msg === 'recording stored'));
  return {
    client, senders, status: res.status,
    sent: () => senders.reduce((n, s) => n + s.packetsSent, 0),
    async finish() {
      for (const s of senders) s.stop();
      const stored = d.waitForLog((l) => l.msg === 'recording stored' && !seenStored.has(l));
      const bye = await client.bye();
      expect(bye.status).toBe(200);
      for (const s of senders) s.close();
      client.close();
      return (await stored).recording as string;
    },
  };
}

function show(d: DaemonHandle, id: string, configFile = d.configFile): { status: string; endedAt: string; retention: { policy?: string; audioExpiresAt: string; metadataExpiresAt: string } } {
  return JSON.parse(execFileSync(process.execPath, [BIN, 'recordings', 'show', id, '--json', '--config', configFile], { encoding: 'utf8' }));
}

const audioDays = (d: DaemonHandle, id: string, configFile = d.configFile) => {
  const e = show(d, id, configFile);
  return (Date.parse(e.retention.audioExpiresAt) - Date.parse(e.endedAt)) / DAY_MS;
};

describe('metrics and health of a daemon that records a call', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('/healthz says alive and /readyz gives a reason per check', async () => {
    const h = await get(d, '/healthz');
    expect(h.status).toBe(200);
    expect(h.type).toMatch(/application\/json/);
    expect(JSON.parse(h.body)).toEqual({ status: 'alive' });
    const r = await get(d, '/readyz');
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('ready');
    // The checks the issue names, each with its verdict; any further check must be ok too.
    expect(body.checks).toMatchObject({ sip: 'ok', index: 'ok', encoder: 'ok', disk: 'ok' });
    for (const [k, v] of Object.entries(body.checks)) expect(v, k).toBe('ok');
  });

  it('moves the counters by exactly the call\'s numbers, and the page passes promtool check metrics', async () => {
    const before = samples((await get(d, '/metrics')).body);
    const call = await startCall(d);
    expect(call.status).toBe(200);
    // Both legs are live: one call, two legs of an RTP and an RTCP port each, out of the
    // configured range. The ratio is what the alert and the dashboard read.
    const rangePorts = d.rtpRange[1] - d.rtpRange[0] + 1;
    const during = samples((await get(d, '/metrics')).body);
    expect(sample(during, 'tallenne_active_calls')).toBe(1);
    expect(sample(during, 'tallenne_rtp_ports_in_use') / sample(during, 'tallenne_rtp_ports_total')).toBeCloseTo(4 / rangePorts, 10);
    await new Promise((r) => setTimeout(r, 1000));
    for (const s of call.senders) s.stop();
    // Hang up only once every packet sent has been counted, so none is in flight at the BYE.
    const sent = call.sent();
    await until(async () => sample(samples((await get(d, '/metrics')).body), 'tallenne_rtp_packets_total') - sample(before, 'tallenne_rtp_packets_total') >= sent, 'the RTP packets to be counted');
    const id = await call.finish();
    expect(show(d, id).status).toBe('complete');

    const page = (await get(d, '/metrics')).body;
    const after = samples(page);
    const delta = (k: string) => sample(after, k) - (before.get(k) ?? 0);
    expect(delta('tallenne_calls_total{result="recorded"}')).toBe(1);
    // The daemon reads its RTP sockets in batches (rtp.receive "auto" with the addon built):
    // at least one batch, never more than the datagrams it held.
    expect(sample(after, 'tallenne_rtp_receive_batched')).toBe(1);
    expect(delta('tallenne_rtp_receive_batches_total')).toBeGreaterThan(0);
    expect(delta('tallenne_rtp_receive_batches_total')).toBeLessThanOrEqual(delta('tallenne_rtp_packets_total'));
    expect(delta('tallenne_calls_total{result="failed"}')).toBe(0);
    expect(delta('tallenne_calls_total{result="truncated"}')).toBe(0);
    expect(delta('tallenne_sip_requests_total{method="INVITE"}')).toBe(1);
    expect(delta('tallenne_sip_requests_total{method="ACK"}')).toBe(1);
    expect(delta('tallenne_sip_requests_total{method="BYE"}')).toBe(1);
    // 100 Trying, then 200 OK to the INVITE and to the BYE.
    expect(delta('tallenne_sip_responses_total{code="100"}')).toBe(1);
    expect(delta('tallenne_sip_responses_total{code="200"}')).toBe(2);
    expect(delta('tallenne_sip_malformed_total')).toBe(0);
    expect(delta('tallenne_rtp_packets_total')).toBe(sent);
    expect(delta('tallenne_rtp_bytes_total')).toBe(sent * 172);
    expect(delta('tallenne_rtp_packets_lost_total')).toBe(0);
    for (const [k] of after) if (k.startsWith('tallenne_rtp_packets_dropped_total')) expect(delta(k), k).toBe(0);
    // One jitter observation per leg at hang-up, one encode per recording.
    expect(delta('tallenne_rtp_jitter_seconds_count')).toBe(2);
    expect(delta('tallenne_encode_duration_seconds_count')).toBe(1);
    // One MOS per leg with audio, with no loss on loopback: above 4.
    expect(delta('tallenne_call_mos_count')).toBe(2);
    expect(delta('tallenne_call_mos_bucket{le="4"}')).toBe(0);
    expect(delta('tallenne_recordings_stored')).toBe(1);
    expect(sample(after, 'tallenne_active_calls')).toBe(0);
    expect(sample(after, 'tallenne_rtp_ports_in_use')).toBe(0);
    expect(sample(after, 'tallenne_rtp_ports_total')).toBeGreaterThan(0);
    expect(sample(after, 'tallenne_encode_realtime_factor')).toBeGreaterThan(1);
    expect(sample(after, 'tallenne_storage_free_bytes')).toBeGreaterThan(0);
    // No label carries a number, a name or a call id.
    expect(page).not.toContain('358401234567');
    expect(page).not.toContain(call.client.callId);
    expect(page).not.toContain(id);

    const lint = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8' });
    if (lint.error) throw new Error(`promtool could not be run (${lint.error.message}); apt-get install prometheus`);
    // The page must parse (exit 1 is a format error). promtool's lint (exit 3) objects to a
    // gauge ending in _total; the only such gauges are prom-client's own handle counts and
    // tallenne_rtp_ports_total, whose name the issue fixes. Anything else is a finding.
    const accepted = new Set(['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total', 'tallenne_rtp_ports_total']);
    const findings = (lint.stdout + lint.stderr).split('\n').filter((l) => l.trim());
    for (const f of findings) {
      const m = /^(\S+) non-counter metrics should not have "_total" suffix$/.exec(f);
      expect(m && accepted.has(m[1]!), `promtool check metrics: ${f}`).toBe(true);
    }
    expect(lint.status).toBe(findings.length === 0 ? 0 : 3);
  });

  it('serves every series the Grafana dashboard and the alert rules query', async () => {
    const page = (await get(d, '/metrics')).body;
    const families = new Map<string, string>();
    for (const m of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1]!, m[2]!);
    const present = new Set<string>();
    for (const [name, type] of families) {
      present.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) present.add(name + s);
    }
    // Prometheus adds `up` itself for every scraped target.
    const exprs = queriedExpressions();
    expect(exprs.length).toBeGreaterThan(25);
    for (const { where, expr } of exprs) {
      for (const m of metricsInPromQl(expr)) {
        if (m === 'up') continue;
        expect(present.has(m), `${where} reads ${m}, which /metrics does not have`).toBe(true);
      }
    }
  });
});

describe('SIGHUP reload of the retention policy', () => {
  let d: DaemonHandle;
  // The CLI reads the index through a config of its own, as the broken file would stop it.
  let cli: string;
  const config = (audio: string) => makeConfig(d.dir, d.rtpRange, `[retention]\naudio = "${audio}"\nmetadata = "1 year"\n`);
  const checkConfig = () => spawnSync(process.execPath, [BIN, 'check-config', '--config', d.configFile], { encoding: 'utf8' });
  const next = (msg: string) => {
    const seen = new Set(d.logs.filter((l) => l.msg === msg));
    return (pred: (l: LogLine) => boolean = () => true) => d.waitForLog((l) => l.msg === msg && !seen.has(l) && pred(l));
  };

  beforeAll(async () => {
    d = await startDaemon({ extraToml: '[retention]\naudio = "30 days"\nmetadata = "1 year"\n' });
    cli = join(d.dir, 'cli.toml');
    writeFileSync(cli, readFileSync(d.configFile));
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('applies a changed policy to calls after the reload, keeps the live call, and keeps the old policy on a broken file', async () => {
    const first = await startCall(d);
    expect(first.status).toBe(200);
    expect(audioDays(d, await first.finish(), cli)).toBe(30);

    // check-config previews the change against what the daemon runs with.
    writeFileSync(d.configFile, config('90 days'));
    const preview = checkConfig();
    expect(preview.status).toBe(0);
    expect(preview.stderr).toContain('reload: retention.audio: "30 days" -> "90 days"');

    // Reload while a call is being recorded: the call goes on and is stored whole.
    const live = await startCall(d);
    expect(live.status).toBe(200);
    const reloaded = next('config reloaded')();
    d.proc.kill('SIGHUP');
    const line = await reloaded;
    expect(line.changed).toEqual(['retention.audio']);
    expect(line.needRestart).toEqual([]);
    expect((await get(d, '/readyz')).status).toBe(200);
    expect(show(d, await live.finish(), cli).status).toBe('complete');
    expect(checkConfig().stderr).toContain('a reload would change nothing');

    const after = await startCall(d);
    expect(audioDays(d, await after.finish(), cli)).toBe(90);

    // A broken file: rejected with its errors logged; the 90-day policy stays.
    writeFileSync(d.configFile, config('ninety days'));
    const during = await startCall(d);
    expect(during.status).toBe(200);
    const rejected = next('config reload rejected; the old config stays in force')();
    d.proc.kill('SIGHUP');
    const why = await rejected;
    expect(why.level).toBe('error');
    expect(JSON.stringify(why.problems)).toContain('retention.audio');
    const kept = await during.finish();
    expect(show(d, kept, cli).status).toBe('complete');
    expect(audioDays(d, kept, cli)).toBe(90);
    const later = await startCall(d);
    expect(audioDays(d, await later.finish(), cli)).toBe(90);
    expect(d.proc.exitCode).toBeNull();
  });
});

describe('free-space floor', () => {
  let d: DaemonHandle;
  let dir: string;
  let rtp: [number, number];
  beforeAll(async () => {
    dir = tempDir('ops');
    rtp = randomRtpRange();
    // A floor no test machine's disk reaches.
    d = await startDaemon({ dir, rtp, configText: makeConfig(dir, rtp).replace('min_free = "1MiB"', 'min_free = "1000TiB"') });
  });
  afterAll(async () => {
    await d?.kill();
    removeDir(dir);
  });

  it('refuses INVITEs with 503 and says why in the log, the metrics and /readyz; lowering the floor by SIGHUP lets calls in', async () => {
    const refused = await startCall(d);
    expect(refused.status).toBe(503);
    refused.client.close();
    const log = await d.waitForLog((l) => l.msg === 'INVITE rejected');
    expect(log.why).toBe('disk_low');
    expect(log.status).toBe(503);
    expect(String(log.detail)).toMatch(/below the floor/);

    const m = samples((await get(d, '/metrics')).body);
    expect(sample(m, 'tallenne_calls_rejected_total{reason="disk_low"}')).toBe(1);
    expect(sample(m, 'tallenne_calls_total{result="rejected"}')).toBe(1);
    expect(sample(m, 'tallenne_calls_total{result="recorded"}')).toBe(0);
    expect(sample(m, 'tallenne_sip_responses_total{code="503"}')).toBe(1);
    expect(sample(m, 'tallenne_rtp_ports_in_use')).toBe(0);

    const ready = await get(d, '/readyz');
    expect(ready.status).toBe(503);
    const body = JSON.parse(ready.body) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('not ready');
    expect(body.checks.disk).toMatch(/below the floor/);
    expect(body.checks.sip).toBe('ok');
    expect((await get(d, '/healthz')).status).toBe(200);

    // storage.min_free is reloadable: no restart needed once space is freed or the floor lowered.
    writeFileSync(d.configFile, makeConfig(dir, rtp));
    const seen = new Set(d.logs.filter((l) => l.msg === 'config reloaded'));
    const reloaded = d.waitForLog((l) => l.msg === 'config reloaded' && !seen.has(l));
    d.proc.kill('SIGHUP');
    expect((await reloaded).changed).toEqual(['storage.min_free']);
    expect((await get(d, '/readyz')).status).toBe(200);
    const accepted = await startCall(d);
    expect(accepted.status).toBe(200);
    expect(show(d, await accepted.finish()).status).toBe('complete');
  });
});
