/**
 * The encoder's memory per live call, at small scale and repeatable: N synthetic two-leg
 * PCMU calls (the bench's audio), each spool written first with the daemon's SpoolWriter,
 * then replayed into a growing file one second at a time (the writers are gone by then, so
 * their chunks are not counted) and followed by its own CallEncoder in this one thread, as
 * an encoder worker follows its calls. After a warm-up (past the start scan's hold and the
 * lag) the heap is collected and measured; then the calls run on as long again and it is
 * measured once more, so a buffer that grows with the call shows as growth.
 *
 *   npm run build && node bench/live-memory.mjs [--calls 200] [--seconds 10] [--audio continuous] [--sealed] [--repo DIR]
 *
 * `--sealed`: the spools are sealed under a per-call key (the daemon's default) and flushed
 * every 200 ms as the call manager does, so each block is what a live call's follower meets;
 * without it they are plain and flushed once a second.
 * `--repo DIR`: measure another checkout's build (its dist/), e.g. the build before a change.
 * libopus' binding is loaded before the baseline in every build.
 * Reported per call: JS memory (heap used + external, which holds the array buffers) over the baseline
 * taken with the spools written and no encoder yet, RSS over the same baseline (it also holds
 * libopus's native encoder state, which the JS figures cannot see), and the encoder's own
 * account of its buffers (CallEncoder.bufferBytes; absent in builds without it).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { appendBenchFrames, benchParties, benchSpoolMeta } from './long-spool.mjs';

const SELF = fileURLToPath(import.meta.url);

if (typeof globalThis.gc !== 'function') {
  // The figures need a full collection before each reading.
  execFileSync(process.execPath, ['--expose-gc', SELF, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(0);
}

const { values: opt } = parseArgs({
  options: {
    calls: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    audio: { type: 'string', default: 'continuous' },
    repo: { type: 'string', default: resolve(fileURLToPath(new URL('..', import.meta.url))) },
    complexity: { type: 'string', default: '5' },
    bitrate: { type: 'string', default: '24000' },
    sealed: { type: 'boolean', default: false },
  },
});
const calls = Number(opt.calls);
const seconds = Number(opt.seconds);
const repo = resolve(opt.repo);
const { SpoolWriter } = await import(join(repo, 'dist', 'spool', 'writer.js'));
const { RecordType } = await import(join(repo, 'dist', 'spool', 'format.js'));
const { CallEncoder } = await import(join(repo, 'dist', 'encoder', 'call-encoder.js'));
// libopus' binding is loaded (and one encoder run) before the baseline, so the per-call figures
// hold the calls' memory and not the library's: builds load it at import or at first use.
const { createOpusEncoder } = await import(join(repo, 'dist', 'encoder', 'opus-native.js'));
createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 }).encode(Buffer.alloc(320));
const sealing = opt.sealed
  ? { ...(await import(join(repo, 'dist', 'spool', 'cipher.js'))), ...(await import(join(repo, 'dist', 'crypto', 'keyring.js'))) }
  : null;
/** Flushes per second of call: the call manager's 200 ms when sealed (each flush is a block). */
const FLUSHES = opt.sealed ? 5 : 1;

function measure() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  if (process.env.LIVEMEM_DEBUG) console.error(m);
  // external includes the array buffers (Buffers, typed arrays).
  return { js: m.heapUsed + m.external, rss: m.rss };
}

const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-livemem-'));
try {
  const parties = benchParties(opt.audio);
  const answeredAt = Date.UTC(2026, 0, 1, 8);
  // Each call's spool, written whole; `ends[c][k]`: its size once second k was flushed.
  const ends = [];
  const ring = sealing ? sealing.Keyring.open({ master_key_file: join(dir, 'master.key') }) : null;
  /** Each call's spool key (a copy: the writer overwrites its own when it closes). */
  const keys = [];
  for (let c = 0; c < calls; c++) {
    const path = join(dir, `${c}.full`);
    const spoolKey = sealing ? sealing.newSpoolKey(ring, `LIVEMEM${c}`) : undefined;
    keys.push(spoolKey ? Buffer.from(spoolKey.key) : undefined);
    const w = new SpoolWriter(path, spoolKey);
    w.appendMeta(answeredAt, benchSpoolMeta(`LIVEMEM${c}`, answeredAt));
    const sizes = [];
    for (let k = 0; k < 2 * seconds; k++) {
      for (let f = 0; f < FLUSHES; f++) {
        appendBenchFrames(w, RecordType.Rtp, parties, answeredAt, k * 50 + (f * 50) / FLUSHES, k * 50 + ((f + 1) * 50) / FLUSHES);
        w.flush();
      }
      await w.drain();
      sizes.push(statSync(path).size);
    }
    await w.close({ endedAt: answeredAt + 2 * seconds * 1000, reason: 'bye' });
    ends.push(sizes);
  }
  const chunk = Buffer.alloc(64 * 1024);
  let second = 0;
  /** Appends second `second` of every call to its growing spool. */
  const writeSecond = () => {
    for (let c = 0; c < calls; c++) {
      const from = second === 0 ? 0 : ends[c][second - 1];
      const fd = openSync(join(dir, `${c}.full`), 'r');
      for (let at = from; at < ends[c][second]; ) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, ends[c][second] - at), at);
        appendFileSync(join(dir, `${c}.spool`), chunk.subarray(0, n));
        at += n;
      }
      closeSync(fd);
    }
    second++;
  };
  for (let c = 0; c < calls; c++) writeFileSync(join(dir, `${c}.spool`), '');
  writeSecond();
  const base = measure();
  const encoders = ends.map((_, c) => new CallEncoder({
    // `staging` for builds with the store seam, `storageDir` for the ones before it.
    spoolPath: join(dir, `${c}.spool`), storageDir: join(dir, 'store'), staging: { kind: 'local', dir: join(dir, 'store', 'recordings', '.staging') }, id: `LIVEMEM${c}`,
    complexity: Number(opt.complexity), bitrate: Number(opt.bitrate), skipSilence: true, maskDtmf: false,
    ...(keys[c] ? { spoolKey: keys[c] } : {}),
  }));
  const run = async (until) => {
    while (second < until) {
      writeSecond();
      for (const e of encoders) await e.advance();
    }
  };
  const reading = (m) => {
    const own = encoders.reduce((s, e) => s + (e.bufferBytes ?? NaN), 0);
    return {
      atSecond: second,
      jsKbPerCall: Math.round((m.js - base.js) / calls / 102.4) / 10,
      rssKbPerCall: Math.round((m.rss - base.rss) / calls / 102.4) / 10,
      bufferKbPerCall: Number.isFinite(own) ? Math.round(own / calls / 102.4) / 10 : null,
    };
  };
  await run(seconds);
  const first = reading(measure());
  await run(2 * seconds);
  const second2 = reading(measure());
  for (const e of encoders) await e.abort();
  process.stdout.write(`${JSON.stringify({ repo, calls, audio: opt.audio, sealed: opt.sealed, readings: [first, second2], growthKbPerCall: Math.round((second2.jsKbPerCall - first.jsKbPerCall) * 10) / 10 }, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
