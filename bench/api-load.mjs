/**
 * The recordings API under load, against the real daemon (bin/tallenne run, built dist/):
 *   - p50/p99 of a search page (50 entries) with N entries in the index (default 1,000,000,
 *     filled the way bench/index-load.mjs fills it): the latest page as a quality expert
 *     (sees all), a supervisor's team-scoped page, and a DPO's subject search by number;
 *   - time to first audio byte of a 1-hour two-channel Ogg Opus recording: the first play of
 *     a login (which writes the play audit entry), then repeated plays and seeks to the middle.
 *
 *   node bench/api-load.mjs [--entries N] [--requests R] [--audio-minutes M] [--out FILE.json]
 *
 * Requests run one at a time from this process over loopback (latency, not throughput).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { fillIndex, quantiles } from './index-load.mjs';

const REPO = fileURLToPath(new URL('../', import.meta.url));

function args() {
  const a = process.argv.slice(2);
  const get = (name, dflt) => {
    const i = a.indexOf(`--${name}`);
    return i >= 0 ? a[i + 1] : dflt;
  };
  return {
    entries: Number(get('entries', 1_000_000)),
    requests: Number(get('requests', 300)),
    audioMinutes: Number(get('audio-minutes', 60)),
    out: get('out', undefined),
  };
}

/** One GET; resolves when the first body byte arrives (ttfb) and when the body ends (total). */
function get(port, path, headers) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let ttfb = null;
    let bytes = 0;
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      res.on('data', (c) => {
        if (ttfb === null) ttfb = performance.now() - start;
        bytes += c.length;
        // Audio: the first byte is what a player waits for; the rest is not timed.
        if (headers.range !== undefined) res.destroy();
      });
      res.on('close', () => resolve({ status: res.statusCode, ttfb, total: performance.now() - start, bytes }));
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

async function main() {
  const o = args();
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-api-'));
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  let daemon;
  try {
    const { openIndex } = await import(join(REPO, 'dist', 'index', 'index.js'));
    const { recordingKey } = await import(join(REPO, 'dist', 'storage', 'audio-store.js'));
    const index = await openIndex(data);
    const t0 = Date.UTC(2025, 0, 1);
    const fillStart = performance.now();
    await fillIndex(index, o.entries, t0);
    const fillSeconds = (performance.now() - fillStart) / 1000;

    // The long recording: a real two-channel Ogg Opus file of the given length.
    const longId = '01LONGRECORDINGBENCH000000';
    const answeredAt = t0 + 400 * 86_400_000;
    // Written where the file-system store keeps the key (the bench sets the data up directly).
    const key = recordingKey(longId, answeredAt);
    const file = join(data, key);
    mkdirSync(dirname(file), { recursive: true });
    const secs = o.audioMinutes * 60;
    const encStart = performance.now();
    execFileSync('ffmpeg', ['-v', 'error', '-y',
      '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${secs}`,
      '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${secs}`,
      '-filter_complex', '[0:a][1:a]join=inputs=2:channel_layout=stereo[a]', '-map', '[a]',
      '-c:a', 'libopus', '-b:a', '24k', '-compression_level', '0', file]);
    const encodeSeconds = (performance.now() - encStart) / 1000;
    const size = statSync(file).size;
    await index.put({
      id: longId, callId: 'bench-long', siprec: true, answeredAt, direction: 'inbound', participants: [],
      startedAt: new Date(answeredAt).toISOString(), endedAt: new Date(answeredAt + secs * 1000).toISOString(), durationMs: secs * 1000,
      status: 'complete', endReason: 'bye', legs: [], pauses: [], dtmf: [], agentId: 'agent0', team: 'team0',
      file: key, fileBytes: size, sampleRate: 48000, channels: 2,
    });
    // One customer with 20 recordings, hashed with the key the daemon will use, for the
    // DPO's subject search.
    const { NumberHasher } = await import(join(REPO, 'dist', 'privacy', 'numbers.js'));
    const hash = NumberHasher.open(join(data, 'number-hash.key')).hash('+358401234567');
    for (let i = 0; i < 20; i++) {
      const at = t0 + i * 17 * 86_400_000;
      await index.put({
        id: `01SUBJECT${String(i).padStart(17, '0')}`, callId: `bench-subject-${i}`, siprec: true, answeredAt: at, direction: 'inbound', participants: [],
        customerNumber: '+358401234***', customerNumberHash: hash,
        startedAt: new Date(at).toISOString(), endedAt: new Date(at + 60_000).toISOString(), durationMs: 60_000,
        status: 'complete', endReason: 'bye', legs: [], pauses: [], dtmf: [], agentId: 'agent1', team: 'team1',
        file: `recordings/none/${i}.opus`, fileBytes: 0, sampleRate: 48000, channels: 2,
      });
    }
    const tokens = {};
    for (const [name, roles, extra] of [['quality', ['quality'], {}], ['supervisor', ['supervisor'], { teams: ['team3'] }], ['dpo', ['dpo'], {}], ['listener', ['quality'], {}]]) {
      await index.users.addUser({ name, roles, teams: [], ...extra });
      tokens[name] = (await index.users.createToken(name, undefined)).token;
    }
    await index.close();

    const configFile = join(dir, 'tallenne.toml');
    writeFileSync(configFile, `
[sip]
listen = ["udp:127.0.0.1:0"]
[storage]
dir = "${data}"
min_free = "1MiB"
[http]
listen = "127.0.0.1:0"
[privacy]
hash_key_file = "${data}/number-hash.key"
[api]
rate_limit = 1000000
[retention]
purge_interval = "1 day"
[log]
level = "info"
`);
    daemon = spawn(process.execPath, [join(REPO, 'bin', 'tallenne'), 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise((resolve, reject) => {
      let buf = '';
      daemon.stdout.on('data', (c) => {
        buf += c;
        for (const line of buf.split('\n')) {
          try {
            const l = JSON.parse(line);
            if (l.msg === 'HTTP listening') resolve(l.port);
          } catch {
            // partial line
          }
        }
      });
      daemon.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
    });
    const auth = (who) => ({ authorization: `Bearer ${tokens[who]}` });

    const searches = {
      latestPage: { who: 'quality', path: '/api/v1/recordings?limit=50' },
      teamPage: { who: 'supervisor', path: '/api/v1/recordings?limit=50' },
      agentPage: { who: 'quality', path: '/api/v1/recordings?limit=50&agent=agent7' },
      subjectSearch: { who: 'dpo', path: `/api/v1/recordings?limit=50&number=${encodeURIComponent('040 123 4567')}` },
    };
    const result = { entries: o.entries, fillSeconds: Math.round(fillSeconds), requestsPerKind: o.requests, search: {}, audio: {} };
    for (const [name, s] of Object.entries(searches)) {
      const times = [];
      let items = 0;
      for (let i = 0; i < 10; i++) await get(port, s.path, auth(s.who)); // warm-up
      for (let i = 0; i < o.requests; i++) {
        const r = await get(port, s.path, auth(s.who));
        if (r.status !== 200) throw new Error(`${name}: HTTP ${r.status}`);
        times.push(r.total);
        items += r.bytes;
      }
      result.search[name] = { ...quantiles(times), meanBodyBytes: Math.round(items / o.requests) };
    }

    const audio = `/api/v1/recordings/${longId}/audio`;
    const first = await get(port, audio, { ...auth('listener'), range: 'bytes=0-' });
    const again = [];
    const seek = [];
    for (let i = 0; i < 50; i++) {
      again.push((await get(port, audio, { ...auth('listener'), range: 'bytes=0-' })).ttfb);
      const at = Math.floor(Math.random() * (size - 1000));
      seek.push((await get(port, audio, { ...auth('listener'), range: `bytes=${at}-` })).ttfb);
    }
    result.audio = {
      minutes: o.audioMinutes,
      fileBytes: size,
      encodeSeconds: Math.round(encodeSeconds),
      firstPlayTtfbMs: Math.round(first.ttfb * 1000) / 1000,
      replayTtfb: quantiles(again),
      seekTtfb: quantiles(seek),
    };
    result.loadAverage = (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10);
    const text = JSON.stringify(result, null, 2);
    process.stdout.write(`${text}\n`);
    if (o.out) writeFileSync(o.out, `${text}\n`);
  } finally {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.on('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exitCode = 1;
});
