/**
 * Where the daemon's CPU goes, stage by stage (bench `--stages`). Off unless
 * TALLENNE_STAGE_CLOCK sets a sampling period N; off, every call is one branch on a constant.
 *
 * On, each stage counts every call and times 1 call in N with performance.now(); its time is
 * estimated as (time of the timed calls) × (calls ÷ timed calls); a timed call that took
 * longer than PREEMPTED_MS is left out, as the thread was then off the CPU. Stages that share a thread
 * are told apart this way; a thread's whole CPU comes from the kernel (cpu-time.ts), so what
 * no stage claims is seen as the thread's remainder, not lost.
 *
 * Every thread keeps its own figures. A worker thread (the encoder) posts its running totals
 * and its own CPU time on a BroadcastChannel every 250 ms; the main thread keeps the latest
 * of each and adds its own when the metrics are scraped (src/api/metrics.ts).
 */
import { performance } from 'node:perf_hooks';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import { stageClockPeriod } from './config/diagnostics.js';
import { threadCpuMicros } from './encoder/cpu-time.js';

/** The stages timed. Capture: main thread; the rest: encoder threads. */
export const Stage = {
  /** One RTP datagram in JS: source check, SRTP, parse, statistics, spool append. */
  captureRtp: 0,
  /** The copy of a packet into the spool chunk (inside captureRtp). */
  spoolAppend: 1,
  /** One spool record in the encoder: everything from the record to the Ogg file. */
  encoderRecord: 2,
  /** Payload decoding (G.711, G.722, L16, Opus) inside encoderRecord. */
  decode: 3,
  /** Mixing a 20 ms frame out of the timeline's rings. */
  mix: 4,
  /** The silence gate's energy measurement. */
  silence: 5,
  /** libopus encode calls. */
  libopus: 6,
  /** Multistream packet framing and the Ogg page writer (CRC, page write). */
  ogg: 7,
} as const;
export type StageId = (typeof Stage)[keyof typeof Stage];
export const STAGE_NAMES: readonly string[] = Object.keys(Stage);

const PERIOD = stageClockPeriod();
/** True when the daemon was started with the stage clock on. */
export const stageClockOn = PERIOD > 0;

const COUNT = STAGE_NAMES.length;
const calls = new Float64Array(COUNT);
const timed = new Float64Array(COUNT);
const timedMs = new Float64Array(COUNT);
const dropped = new Float64Array(COUNT);

/** Starts timing a call of stage `s`: a time to hand to stageEnd, or -1 (off, or not sampled). */
export function stageBegin(s: StageId): number {
  if (!stageClockOn) return -1;
  if (++calls[s]! % PERIOD !== 0) return -1;
  return performance.now();
}

/**
 * A timed call longer than this was preempted (the box is busy, or the encoder at its nice
 * level waited): wall time is then not the stage's CPU, so the sample is left out.
 */
const PREEMPTED_MS = 2;

export function stageEnd(s: StageId, t0: number): void {
  if (t0 < 0) return;
  const ms = performance.now() - t0;
  if (ms > PREEMPTED_MS) {
    dropped[s]!++;
    return;
  }
  timedMs[s]! += ms;
  timed[s]!++;
}

/** `fn` itself when the clock is off; else `fn` timed as stage `s` (functions of up to five arguments). */
export function stageTimed<F extends (a: never, b: never, c: never, d: never, e: never) => unknown>(s: StageId, fn: F): F {
  if (!stageClockOn) return fn;
  const f = fn as unknown as (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => unknown;
  return ((a: unknown, b: unknown, c: unknown, d: unknown, e: unknown) => {
    const t = stageBegin(s);
    const r = f(a, b, c, d, e);
    stageEnd(s, t);
    return r;
  }) as unknown as F;
}

/** One thread's running totals. */
interface ThreadFigures {
  readonly cpuMicros: number;
  readonly calls: readonly number[];
  readonly timed: readonly number[];
  readonly timedMs: readonly number[];
}

const CHANNEL = 'tallenne-stage-clock';
const POST_EVERY_MS = 250;
const workers = new Map<number, ThreadFigures>();

function ownFigures(): ThreadFigures {
  return { cpuMicros: threadCpuMicros(), calls: [...calls], timed: [...timed], timedMs: [...timedMs] };
}

if (stageClockOn) {
  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  if (isMainThread) {
    channel.onmessage = (ev: unknown): void => {
      const m = (ev as { data: { thread: number; figures: ThreadFigures } }).data;
      workers.set(m.thread, m.figures);
    };
  } else {
    let last = -1;
    setInterval(() => {
      // Only when something was counted since the last post, so an idle thread stays quiet.
      const total = calls.reduce((a, b) => a + b, 0);
      if (total === last) return;
      last = total;
      channel.postMessage({ thread: threadId, figures: ownFigures() });
    }, POST_EVERY_MS).unref();
  }
}

export interface StageFigure {
  readonly stage: string;
  readonly calls: number;
  readonly timed: number;
  /** Estimated CPU seconds: time of the timed calls scaled to all calls. */
  readonly seconds: number;
}

export interface StageTotals {
  readonly stages: StageFigure[];
  /** CPU seconds of the worker threads that reported (the encoders), by their own clocks. */
  readonly workerCpuSeconds: number;
  readonly workers: number;
}

/** The process's totals so far (main thread and every worker that reported); null when off. */
export function stageTotals(): StageTotals | null {
  if (!stageClockOn) return null;
  const all = [{ calls: [...calls], timed: [...timed], timedMs: [...timedMs], cpuMicros: 0 }, ...workers.values()];
  const stages = STAGE_NAMES.map((stage, s) => {
    let c = 0;
    let seconds = 0;
    let t = 0;
    for (const f of all) {
      c += f.calls[s]!;
      t += f.timed[s]!;
      if (f.timed[s]! > 0) seconds += (f.timedMs[s]! / 1000) * (f.calls[s]! / f.timed[s]!);
    }
    return { stage, calls: c, timed: t, seconds };
  });
  let cpu = 0;
  for (const f of workers.values()) cpu += f.cpuMicros / 1e6;
  return { stages, workerCpuSeconds: cpu, workers: workers.size };
}
