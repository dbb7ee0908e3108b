/**
 * One fuzz run: inputs 0..N-1, each made by its target's generator from its own seed (so any
 * one can be made again alone), checked against the pure parser and timed; a share of the
 * SIP inputs also goes to a running daemon over UDP and TCP. The pass rule: no crash, no
 * input over the hang limit, and on the daemon side no process exit, an OPTIONS answered,
 * no RTP port or file descriptor left behind and live memory flat after a warm-up.
 */
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TallenneError } from '../../src/errors.js';
import { threadCpuMicros } from '../../src/encoder/cpu-time.js';
import { Rng } from './rng.js';
import { loadCorpus } from './seeds.js';
import { TARGETS, TARGET_NAMES, type FuzzInput, type TargetName } from './targets.js';
import { DaemonProbe, type DaemonReading } from './daemon.js';

export interface FuzzOptions {
  inputs: number;
  seed: number;
  targets?: readonly TargetName[];
  /** Fraction of SIP inputs (sip, sip-stream) also sent to a daemon; 0: no daemon. */
  daemonShare?: number;
  /** Run this one input only (with the same seed and targets it had). */
  index?: number;
  /** Run inputs [from, to) of the N only: one shard of a run split over processes. */
  from?: number;
  to?: number;
  /** An input that costs more CPU time than this, on three tries, is a hang. */
  hangMs?: number;
  /** An input that takes longer than this by the clock, on three tries, is a hang too (a stall). */
  stallMs?: number;
  /** Where failing inputs are written; a folder of its own under the temp dir by default. */
  failuresDir?: string;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
}

export type FailureKind = 'crash' | 'hang';

export interface Failure {
  kind: FailureKind;
  target: TargetName;
  seed: number;
  index: number;
  error: string;
  ms: number;
  /** The JSON file holding the input. */
  file: string;
}

export interface TargetStats {
  inputs: number;
  accepted: number;
  rejected: number;
  crashes: number;
  hangs: number;
  /** Most CPU time one input took (ms). */
  maxMs: number;
  /** Most wall-clock time one input took (ms); inflated on a busy machine. */
  maxWallMs: number;
  /** Mean CPU time per input. */
  meanMs: number;
}

export interface DaemonSummary {
  sentUdp: number;
  sentTcp: number;
  /** Final responses by status. */
  answers: Record<string, number>;
  alive: boolean;
  optionsStatus: number | null;
  afterWarmup: DaemonReading;
  atEnd: DaemonReading;
  /** What the pass rule allows to grow after the warm-up (see bench/README.md, "Fuzz"). */
  bounds: { fds: number; liveKiB: number; rssKiB: number };
  pass: boolean;
}

export interface FuzzSummary {
  seed: number;
  inputs: number;
  /** The hang rule: CPU ms per input, and wall-clock ms for a stall. */
  hangLimitMs: number;
  stallLimitMs: number;
  seconds: number;
  perTarget: Record<string, TargetStats>;
  crashes: number;
  hangs: number;
  maxMs: number;
  /** Distinct crash signatures, with their first input. */
  failures: Failure[];
  fuzzerHeapMiB: { before: number; after: number };
  daemon: DaemonSummary | null;
  pass: boolean;
}

/** A garbage collector for the heap readings (node runs without --expose-gc here). */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapMiB(gc: () => void): number {
  gc();
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
}

/** The first line of an error and the first frame of its stack: what tells crashes apart. */
function signature(e: unknown): string {
  if (!(e instanceof Error)) return `non-error thrown: ${String(e).slice(0, 200)}`;
  const frame = e.stack?.split('\n').find((l) => l.trim().startsWith('at ')) ?? '';
  return `${e.name}: ${e.message.split('\n')[0]!.slice(0, 200)} ${frame.trim()}`;
}

/** JSON form of an input, the bytes in base64: what a regression test holds. */
export function inputToJson(input: FuzzInput): Record<string, unknown> {
  return { ...input, data: input.data.toString('base64') };
}

export function inputFromJson(o: Record<string, unknown>): FuzzInput {
  return { ...(o as unknown as FuzzInput), data: Buffer.from(o['data'] as string, 'base64') };
}

export interface CheckResult {
  outcome: 'accepted' | 'rejected' | 'crash';
  error?: unknown;
  /** CPU time the check took (ms): what a runaway parser spends. */
  ms: number;
  /** Wall-clock time: on a busy machine far above `ms`; far above the limit only when stalled. */
  wallMs: number;
}

/** The process's CPU time: cheap to read, but it counts the garbage collector's and libuv's threads too. */
function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** This thread's CPU time alone, in 10 ms ticks: what a retry of a slow input is judged by. */
function threadCpuMs(): number {
  return threadCpuMicros() / 1000;
}

/**
 * Runs the input's check once: 'accepted', 'rejected' (a typed error), or the error thrown.
 * `precise` times it by this thread's CPU time instead of the process's.
 */
export async function checkInput(input: FuzzInput, scratch: string, precise = false): Promise<CheckResult> {
  const cpuMs = precise ? threadCpuMs : processCpuMs;
  const c0 = cpuMs();
  const t0 = performance.now();
  const done = (outcome: CheckResult['outcome'], error?: unknown): CheckResult => ({
    outcome, ...(error !== undefined ? { error } : {}), ms: cpuMs() - c0, wallMs: performance.now() - t0,
  });
  try {
    const r = TARGETS[input.target].check(input, { scratch });
    if (r !== undefined) await r;
    return done('accepted');
  } catch (e) {
    return e instanceof TallenneError ? done('rejected') : done('crash', e);
  }
}

export function generateInput(target: TargetName, seed: number, index: number): FuzzInput {
  return TARGETS[target].generate(new Rng(Rng.inputSeed(seed, index)), loadCorpus());
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzSummary> {
  const targets = opts.targets ?? TARGET_NAMES;
  const hangMs = opts.hangMs ?? 100;
  const stallMs = opts.stallMs ?? 2000;
  const share = opts.daemonShare ?? 0;
  const say = opts.progress ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), 'tallenne-fuzz-'));
  // Spool inputs are files: a memory file system, where there is one, keeps disk time out of the timings.
  const scratch = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/tallenne-fuzz-') : join(work, 'scratch');
  mkdirSync(scratch, { recursive: true });
  const failuresDir = opts.failuresDir ?? join(tmpdir(), `tallenne-fuzz-failures-${opts.seed}`);
  const gc = collector();
  const started = performance.now();
  loadCorpus();
  const heapBefore = heapMiB(gc);
  const perTarget: Record<string, TargetStats> = {};
  for (const t of targets) perTarget[t] = { inputs: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0, maxMs: 0, maxWallMs: 0, meanMs: 0 };
  const failures: Failure[] = [];
  const signatures = new Set<string>();
  let probe: DaemonProbe | null = null;
  let daemon: DaemonSummary | null = null;
  const networkInputs = (n: number): number => Math.round(n * share * targets.filter((t) => t === 'sip' || t === 'sip-stream').length / targets.length);
  const warmup = Math.max(20, Math.min(500, Math.floor(networkInputs((opts.to ?? opts.inputs) - (opts.from ?? 0)) / 10)));
  let sentToDaemon = 0;
  let afterWarmup: DaemonReading | null = null;

  const record = (kind: FailureKind, input: FuzzInput, index: number, error: string, ms: number): void => {
    const key = `${kind} ${input.target} ${error}`;
    if (signatures.has(key)) return;
    signatures.add(key);
    mkdirSync(failuresDir, { recursive: true });
    const file = join(failuresDir, `${input.target}-${opts.seed}-${index}.json`);
    writeFileSync(file, JSON.stringify({ kind, seed: opts.seed, index, error, ms, input: inputToJson(input) }, null, 1));
    failures.push({ kind, target: input.target, seed: opts.seed, index, error, ms, file });
    say(`${kind}: ${input.target} input ${index} (seed ${opts.seed}): ${error} -> ${file}`);
  };

  // Interrupted (the CLI turns SIGINT and SIGTERM into an exit), the run still removes its
  // folders and stops its daemon.
  const onExit = (): void => {
    probe?.daemon.proc.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    if (share > 0 && opts.index === undefined) probe = await DaemonProbe.start(join(work, 'daemon'));
    const first = opts.index ?? opts.from ?? 0;
    const last = opts.index ?? (opts.to ?? opts.inputs) - 1;
    for (let i = first; i <= last; i++) {
      const name = targets[i % targets.length]!;
      const inputSeed = Rng.inputSeed(opts.seed, i);
      const input = TARGETS[name].generate(new Rng(inputSeed), loadCorpus());
      const stats = perTarget[name]!;
      stats.inputs++;
      let r = await checkInput(input, scratch);
      const slow = (x: CheckResult): boolean => x.ms > hangMs || x.wallMs > stallMs;
      // One slow run (a garbage collection, a busy machine) is not yet a hang: it must be slow
      // every time, and the retries count this thread's CPU time only.
      for (let k = 0; k < 2 && r.outcome !== 'crash' && slow(r); k++) {
        const again = await checkInput(input, scratch, true);
        if (again.ms <= r.ms) r = again;
      }
      stats.maxMs = Math.max(stats.maxMs, r.ms);
      stats.maxWallMs = Math.max(stats.maxWallMs, r.wallMs);
      stats.meanMs += r.ms;
      if (r.outcome === 'crash') {
        stats.crashes++;
        record('crash', input, i, signature(r.error), r.ms);
      } else {
        stats[r.outcome]++;
        if (slow(r)) {
          stats.hangs++;
          record('hang', input, i, `${r.ms.toFixed(1)} ms CPU, ${r.wallMs.toFixed(1)} ms wall`, r.ms);
        }
      }
      if (probe !== null && (name === 'sip' || name === 'sip-stream') && new Rng(inputSeed ^ 0x0da3).chance(share)) {
        // The same bytes over UDP as one datagram and over TCP in the input's reads.
        if (name === 'sip') probe.sendUdp(input.data);
        else {
          const cuts = [0, ...(input.chunks ?? []), input.data.length];
          probe.sendTcp(cuts.slice(1).map((end, k) => input.data.subarray(cuts[k]!, end)), i);
        }
        sentToDaemon++;
        // Paced, so that the loopback socket buffers are not what is being tested.
        if (sentToDaemon % 20 === 0) await new Promise((res) => setTimeout(res, 5));
        if (sentToDaemon === warmup) {
          afterWarmup = await probe.settle(60_000);
          say(`daemon after warm-up: ${JSON.stringify(afterWarmup)}`);
        }
      }
      if (i % 500 === 0) await new Promise((res) => setImmediate(res));
      if (i > 0 && i % 100_000 === 0) say(`${i} inputs, ${Math.round((performance.now() - started) / 1000)} s`);
    }
    if (probe !== null) {
      const atEnd = await probe.settle(60_000);
      const optionsStatus = await probe.options();
      const base = afterWarmup ?? atEnd;
      // Live memory (heap in use and Buffers) must stay flat; RSS, which holds what the heap
      // grew to and the allocator keeps, only has a backstop against a native leak.
      const bounds = { fds: base.fds + 8, liveKiB: Math.round(base.liveKiB * 1.25) + 16 * 1024, rssKiB: base.rssKiB * 2 + 64 * 1024 };
      const alive = probe.alive;
      daemon = {
        sentUdp: probe.sent.udp,
        sentTcp: probe.sent.tcp,
        answers: Object.fromEntries([...probe.answered].sort((a, b) => a[0] - b[0]).map(([s, n]) => [String(s), n])),
        alive,
        optionsStatus,
        afterWarmup: base,
        atEnd,
        bounds,
        pass: alive && optionsStatus === 200 && atEnd.rtpPortsInUse === 0 && atEnd.activeCalls === 0
          && atEnd.fds <= bounds.fds && atEnd.liveKiB <= bounds.liveKiB && atEnd.rssKiB <= bounds.rssKiB,
      };
    }
  } finally {
    await probe?.stop();
    process.removeListener('exit', onExit);
    onExit();
  }
  const all = Object.values(perTarget);
  const crashes = all.reduce((s, t) => s + t.crashes, 0);
  const hangs = all.reduce((s, t) => s + t.hangs, 0);
  for (const t of all) {
    t.maxMs = Math.round(t.maxMs * 100) / 100;
    t.maxWallMs = Math.round(t.maxWallMs * 100) / 100;
    t.meanMs = t.inputs === 0 ? 0 : Math.round((t.meanMs / t.inputs) * 1000) / 1000;
  }
  return {
    seed: opts.seed,
    inputs: all.reduce((s, t) => s + t.inputs, 0),
    hangLimitMs: hangMs,
    stallLimitMs: stallMs,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    perTarget,
    crashes,
    hangs,
    maxMs: Math.max(0, ...all.map((t) => t.maxMs)),
    failures,
    fuzzerHeapMiB: { before: heapBefore, after: heapMiB(gc) },
    daemon,
    pass: crashes === 0 && hangs === 0 && (daemon === null || daemon.pass),
  };
}

/** One summary of a run split into shards (input ranges run by separate processes). */
export function mergeSummaries(parts: readonly FuzzSummary[]): FuzzSummary {
  const perTarget: Record<string, TargetStats> = {};
  for (const p of parts) {
    for (const [name, t] of Object.entries(p.perTarget)) {
      const m = (perTarget[name] ??= { inputs: 0, accepted: 0, rejected: 0, crashes: 0, hangs: 0, maxMs: 0, maxWallMs: 0, meanMs: 0 });
      m.meanMs = (m.meanMs * m.inputs + t.meanMs * t.inputs) / Math.max(1, m.inputs + t.inputs);
      m.inputs += t.inputs;
      m.accepted += t.accepted;
      m.rejected += t.rejected;
      m.crashes += t.crashes;
      m.hangs += t.hangs;
      m.maxMs = Math.max(m.maxMs, t.maxMs);
      m.maxWallMs = Math.max(m.maxWallMs, t.maxWallMs);
    }
  }
  for (const t of Object.values(perTarget)) t.meanMs = Math.round(t.meanMs * 1000) / 1000;
  const daemon = parts.find((p) => p.daemon !== null)?.daemon ?? null;
  const first = parts[0]!;
  return {
    seed: first.seed,
    inputs: parts.reduce((s, p) => s + p.inputs, 0),
    hangLimitMs: first.hangLimitMs,
    stallLimitMs: first.stallLimitMs,
    seconds: Math.max(...parts.map((p) => p.seconds)),
    perTarget,
    crashes: parts.reduce((s, p) => s + p.crashes, 0),
    hangs: parts.reduce((s, p) => s + p.hangs, 0),
    maxMs: Math.max(...parts.map((p) => p.maxMs)),
    failures: parts.flatMap((p) => p.failures),
    fuzzerHeapMiB: { before: Math.max(...parts.map((p) => p.fuzzerHeapMiB.before)), after: Math.max(...parts.map((p) => p.fuzzerHeapMiB.after)) },
    daemon,
    pass: parts.every((p) => p.pass),
  };
}
