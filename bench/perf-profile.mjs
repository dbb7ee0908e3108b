/**
 * `--perf`: where the daemon's CPU goes by a sampling profiler, with no hook in the daemon.
 * `perf record` samples every thread of the daemon at PERF_HZ through the steady window (all
 * calls up, live encoding running), and `perf report` splits the samples by thread and by
 * the shared object the CPU was in. That is the check on the stage table, whose encoder rows
 * are wall time sampled in 1 call in N and scaled.
 *
 * Threads: the main thread (capture, SIP, HTTP, timers) is the daemon's pid; an encoder
 * thread is one that spent at least ENCODER_SHARE of its samples in the libopus binding;
 * every other thread (libuv's pool, V8's helpers, LMDB) is "other threads".
 * Objects: `opus_codec.node` is libopus (our binding, with its thin wrapper; `opus.node` when
 * the @discordjs/opus stand-in runs it); `node` is Node and V8
 * compiled code (libuv, the runtime, GC, builtins, OpenSSL); `[JIT]` is JavaScript compiled by
 * V8; the kernel is system calls, the network stack and the scheduler; libc and libm are
 * malloc, memcpy and maths.
 *
 * perf may be missing or not allowed (kernel.perf_event_paranoid): the run then goes on and
 * says why in `perf.error`.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PERF_HZ = 499;
const ENCODER_SHARE = 0.25;

/** Shared objects → the rows of the table. */
function objectKind(dso) {
  if (dso === 'opus_codec.node' || dso === 'opus.node') return 'libopus';
  if (dso === 'node') return 'node';
  if (dso.startsWith('[JIT]') || /^perf-\d+\.map$/.test(dso)) return 'js';
  if (dso === '[kernel.kallsyms]' || dso === '[vdso]') return 'kernel';
  if (/^lib(c|m|pthread)[.-]/.test(dso)) return 'libc';
  return 'other';
}
export const PERF_OBJECTS = [
  ['libopus', 'libopus (opus_codec.node)'],
  ['js', 'JavaScript (V8 JIT code)'],
  ['node', 'Node and V8 (libuv, runtime, GC, builtins)'],
  ['kernel', 'kernel (system calls, network stack)'],
  ['libc', 'libc and libm (malloc, memcpy, maths)'],
  ['other', 'other objects (LMDB, …)'],
];
export const PERF_THREADS = [['main', 'main thread'], ['encoder', 'encoder threads'], ['other', 'other threads']];

export class PerfProfile {
  constructor(pid) {
    this.pid = pid;
    this.dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-perf-'));
    this.file = join(this.dir, 'perf.data');
    this.error = null;
    this.proc = spawn('perf', ['record', '-F', String(PERF_HZ), '-p', String(pid), '-o', this.file, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((r) => {
      this.proc.once('error', (e) => {
        this.error = `perf could not start: ${e.message}`;
        r();
      });
      this.proc.once('exit', r);
    });
    this.t0 = Date.now();
  }

  /** Stops recording and reads the report: { seconds, samples, cells: { thread: { object: % of samples } }, threads, objects } or { error }. */
  async stop() {
    try {
      if (this.error === null && this.proc.exitCode === null) this.proc.kill('SIGINT');
      await this.exited;
      if (this.error) return { error: this.error };
      const seconds = (Date.now() - this.t0) / 1000;
      let out;
      try {
        ({ stdout: out } = await run('perf', ['report', '-i', this.file, '--no-children', '-s', 'pid,dso', '--stdio', '-g', 'none', '-F', 'sample,pid,dso'], { maxBuffer: 64 << 20 }));
      } catch (e) {
        return { error: `perf report failed: ${String(this.stderr || e.stderr || e.message).trim().split('\n').pop()}` };
      }
      return summarise(out, this.pid, seconds);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Parses `perf report -F sample,pid,dso` lines ("  1234  31730:node  opus.node"). */
export function summarise(text, pid, seconds) {
  const perThread = new Map();
  let samples = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+):\S*\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const n = Number(m[1]);
    const tid = Number(m[2]);
    const kind = objectKind(m[3]);
    if (!perThread.has(tid)) perThread.set(tid, { total: 0, by: {} });
    const t = perThread.get(tid);
    t.total += n;
    t.by[kind] = (t.by[kind] ?? 0) + n;
    samples += n;
  }
  if (samples === 0) return { error: 'perf recorded no samples' };
  const cells = Object.fromEntries(PERF_THREADS.map(([k]) => [k, Object.fromEntries(PERF_OBJECTS.map(([o]) => [o, 0]))]));
  let encoderThreads = 0;
  for (const [tid, t] of perThread) {
    const group = tid === pid ? 'main' : (t.by.libopus ?? 0) >= ENCODER_SHARE * t.total ? 'encoder' : 'other';
    if (group === 'encoder') encoderThreads++;
    for (const [o, n] of Object.entries(t.by)) cells[group][o] += (100 * n) / samples;
  }
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  for (const row of Object.values(cells)) for (const k of Object.keys(row)) row[k] = Math.round(row[k] * 100) / 100;
  const threads = Object.fromEntries(PERF_THREADS.map(([k]) => [k, sum(Object.values(cells[k]))]));
  const objects = Object.fromEntries(PERF_OBJECTS.map(([o]) => [o, sum(PERF_THREADS.map(([k]) => cells[k][o]))]));
  return { hz: PERF_HZ, seconds: Math.round(seconds * 10) / 10, samples, encoderThreads, cells, threads, objects };
}
