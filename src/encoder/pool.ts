/**
 * A fixed pool of encoder worker threads. Live calls are spread over the workers (each new
 * call goes to the worker following the fewest) and a call stays on its worker until it is
 * finished, since its encoder state lives there. A worker that dies fails the finishes it
 * owed with TALLENNE_ENCODE_FAILED and is replaced; the live calls it followed are encoded
 * from their whole spool when they end, so a bad spool can never wedge the pool.
 *
 * Live listens run on the workers too (listen()): on the worker that follows the call when
 * there is one, else on the least loaded. Their pages come back as transferred buffers and
 * are acknowledged to the worker once the listener's sink has passed them on, so a listener
 * that does not read is cut off by its worker instead of growing memory on either side.
 *
 * close() stops taking calls, lets the finishes owed complete, then ends the workers;
 * destroy() ends them now and fails whatever was owed. Both are idempotent.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, TallenneError, type ErrorCode } from '../errors.js';
import type { EncodeJob, EncodeResult } from './encode-spool.js';
import type { WorkerReply, WorkerRequest } from './encoder-thread.js';
import type { ListenEnd, ListenJob } from './listen-stream.js';

/**
 * The encoder threads' young generation, MB. V8's default lets each thread's nursery grow to
 * tens of MB, which stays in RSS: at 1,000 calls ending together the peak RSS was 442 MB with
 * the default, 412 MB with 16 and 373 MB with 4. At 4 the threads catching up on a backlog
 * spent 15-20 % more CPU (500 calls ending together: p99 12-13 s against 9-10 s); at 16 they
 * did not (9.4 s). bench/README.md, the fourth window.
 */
const ENCODER_YOUNG_GENERATION_MB = 16;

/**
 * The compiled worker. Under vitest this module runs from src/*.ts, but a worker thread
 * cannot load TypeScript, so it always starts the build output in dist/.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/encoder/worker.js' : './worker.js', import.meta.url);

interface Pending {
  readonly id: string;
  readonly resolve: (r: EncodeResult) => void;
  readonly reject: (e: Error) => void;
}

/** Where a live listen's pages go, on the main thread. */
export interface ListenSink {
  /**
   * One Ogg page, its buffer moved from the encoder thread. Call `sent` once it has left for
   * the listener: until then it counts against the listen's window in the worker.
   */
  page(page: Buffer, sent: () => void): void;
  /** The listen is over; called once, and nothing follows. */
  end(end: ListenEnd): void;
}

/** A running live listen, as its caller steers it. */
export interface ListenHandle {
  /** The call has ended: the stream ends once its spool has no more. */
  callEnded(): void;
  /** The listener went away: the worker stops the stream now. */
  stop(): void;
}

interface Slot {
  worker: Worker;
  /** Finishes owed by this worker, by request number. */
  readonly tasks: Map<number, Pending>;
  /** Live calls this worker follows. */
  readonly live: Set<string>;
  /** Live listens this worker encodes, by number. */
  readonly listens: Map<number, ListenSink>;
  /** The worker's last report: the largest lag among its live calls. */
  maxLagMs: number;
  /** Being terminated by the pool: not replaced when it exits. */
  exiting: boolean;
  /** Reported an error: it will exit, so it takes no more calls. */
  dead: boolean;
}

export interface EncoderPoolOptions {
  workers: number;
  /** Heap limit per worker thread (MiB); a runaway job fails instead of exhausting the box. */
  maxHeapMb?: number;
  /** Another worker script speaking the same messages (tests, alternative builds). */
  workerUrl?: URL;
}

/**
 * The encoder threads for the `[encoder] workers` setting: "auto" is one per core. Live
 * encoding spreads the work over the calls' whole length, and the threads run at the lowest
 * priority (worker.ts), so the capture keeps its core when it needs it: on two cores, 1,000
 * calls lost no packet with two encoder threads, and 500 calls ending at once were stored
 * 1.5× sooner at p99 than with one (bench/README.md, "Live encoding: the third window").
 */
export function encoderWorkerCount(setting: number | 'auto', cores: number = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, Math.min(64, cores)) : setting;
}

/** Workers that die this many times in a row without finishing a call mark the pool broken. */
const MAX_IDLE_DEATHS = 3;

export class EncoderPool {
  private readonly size: number;
  private readonly maxHeapMb: number;
  private readonly workerUrl: URL;
  private idleDeaths = 0;
  private broken = false;
  private readonly slots: Slot[] = [];
  /** Live call → the worker that follows it. */
  private readonly owner = new Map<string, Slot>();
  private seq = 0;
  /** Finishes asked for while no worker could take them (between a crash and its replacement). */
  private waiting: Array<{ job: EncodeJob; resolve: (r: EncodeResult) => void; reject: (e: Error) => void }> = [];
  private closing = false;
  private destroyed = false;
  private closed: Promise<void> | null = null;
  private drainWaiters: Array<() => void> = [];
  /** Workers replaced after a crash (for metrics). */
  crashes = 0;

  constructor(opts: EncoderPoolOptions) {
    this.size = Math.max(1, Math.floor(opts.workers));
    this.maxHeapMb = opts.maxHeapMb ?? 256;
    this.workerUrl = opts.workerUrl ?? WORKER_URL;
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  /** Ended calls whose recording is not finished yet (the encoder's backlog). */
  get queueLength(): number {
    return this.slots.reduce((n, s) => n + s.tasks.size, 0);
  }

  /** Workers with a live call or a finish to do. */
  get busy(): number {
    return this.slots.filter((s) => s.tasks.size > 0 || s.live.size > 0).length;
  }

  /** Live calls followed by each worker. */
  get liveCalls(): number[] {
    return this.slots.map((s) => s.live.size);
  }

  /** Live listens running on the workers. */
  get listening(): number {
    return this.slots.reduce((n, s) => n + s.listens.size, 0);
  }

  /** The largest encoder lag (ms) among the live calls, as the workers last reported. */
  get maxLagMs(): number {
    return this.slots.reduce((m, s) => (s.live.size > 0 ? Math.max(m, s.maxLagMs) : m), 0);
  }

  /** True while the pool takes calls and has its workers. */
  get alive(): boolean {
    return !this.closing && !this.destroyed && !this.broken && this.slots.length === this.size;
  }

  /** A call was answered: its worker starts following its spool. */
  follow(job: EncodeJob): void {
    if (!this.alive || this.owner.has(job.id)) return;
    const slot = this.leastLoaded();
    if (!slot) return;
    slot.live.add(job.id);
    this.owner.set(job.id, slot);
    slot.worker.ref();
    slot.worker.postMessage({ op: 'follow', job } satisfies WorkerRequest);
  }

  /**
   * The call's spool is closed: its worker encodes the tail and commits the file. A call no
   * worker follows (recovery, a retry, its worker died) is encoded from its whole spool.
   */
  finish(job: EncodeJob): Promise<EncodeResult> {
    if (this.destroyed || (this.closing && !this.owner.has(job.id))) return Promise.reject(new TallenneError('TALLENNE_SHUTTING_DOWN', 'the encoder pool is closed'));
    if (this.broken) return Promise.reject(new TallenneError('TALLENNE_ENCODE_FAILED', 'encoder workers cannot start'));
    const owner = this.owner.get(job.id);
    this.owner.delete(job.id);
    const slot = owner && this.slots.includes(owner) && !owner.dead ? owner : this.leastLoaded();
    return new Promise<EncodeResult>((resolve, reject) => {
      if (slot) this.send(slot, job, resolve, reject);
      else this.waiting.push({ job, resolve, reject });
    });
  }

  private send(slot: Slot, job: EncodeJob, resolve: (r: EncodeResult) => void, reject: (e: Error) => void): void {
    slot.live.delete(job.id);
    const seq = ++this.seq;
    slot.tasks.set(seq, { id: job.id, resolve, reject });
    slot.worker.ref();
    slot.worker.postMessage({ op: 'finish', seq, job } satisfies WorkerRequest);
  }

  /** Hands what waited for a worker to the workers there are now, or fails it if there will be none. */
  private dispatchWaiting(): void {
    const waiting = this.waiting.splice(0);
    for (const w of waiting) {
      const slot = this.destroyed || this.broken ? undefined : this.leastLoaded();
      if (slot) this.send(slot, w.job, w.resolve, w.reject);
      else w.reject(new TallenneError(this.destroyed ? 'TALLENNE_SHUTTING_DOWN' : 'TALLENNE_ENCODE_FAILED', this.destroyed ? 'the encoder pool was destroyed' : 'encoder workers cannot start'));
    }
  }

  /**
   * Starts a live listen of call `callId` on the worker that follows it (else the least
   * loaded). The job's spool key belongs to the pool from here: it is moved to the worker and
   * the caller's copy overwritten. Throws TALLENNE_SHUTTING_DOWN once the pool is closing.
   */
  listen(callId: string, job: ListenJob, sink: ListenSink): ListenHandle {
    const given = job.spoolKey;
    try {
      if (!this.alive) throw new TallenneError(this.broken ? 'TALLENNE_ENCODE_FAILED' : 'TALLENNE_SHUTTING_DOWN', this.broken ? 'encoder workers cannot start' : 'the encoder pool is closed');
      const owner = this.owner.get(callId);
      const slot = owner && !owner.dead && !owner.exiting ? owner : this.leastLoaded();
      if (!slot) throw new TallenneError('TALLENNE_ENCODE_FAILED', 'no encoder worker can take a listen now');
      const n = ++this.seq;
      slot.listens.set(n, sink);
      slot.worker.ref();
      // A copy in a buffer of its own, moved (not cloned) to the worker.
      const key = given ? Uint8Array.from(given) : undefined;
      const { spoolKey: _given, ...rest } = job;
      const req: WorkerRequest = { op: 'listen', listen: n, job: { ...rest, ...(key ? { spoolKey: key } : {}) } };
      slot.worker.postMessage(req, key ? [key.buffer] : []);
      const post = (r: WorkerRequest): void => {
        if (slot.listens.has(n)) slot.worker.postMessage(r);
      };
      return {
        callEnded: () => post({ op: 'listen-call-ended', listen: n }),
        stop: () => post({ op: 'listen-stop', listen: n }),
      };
    } finally {
      given?.fill(0);
    }
  }

  /** A whole spool (recovery, a retry) encoded in one go. */
  encode(job: EncodeJob): Promise<EncodeResult> {
    return this.finish(job);
  }

  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      await new Promise<void>((r) => {
        this.drainWaiters.push(r);
        this.checkDrained();
      });
      await this.terminateAll();
    })();
    return this.closed;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closing = true;
    const err = new TallenneError('TALLENNE_SHUTTING_DOWN', 'the encoder pool was destroyed');
    for (const s of this.slots) this.failTasks(s, err);
    this.dispatchWaiting();
    await this.terminateAll();
    this.checkDrained();
  }

  private leastLoaded(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) {
      if (s.exiting || s.dead) continue;
      if (!best || load(s) < load(best)) best = s;
    }
    return best;
  }

  private async terminateAll(): Promise<void> {
    const slots = this.slots.splice(0);
    this.owner.clear();
    for (const s of slots) endListens(s, { reason: 'shutdown', bytes: 0, frames: 0 });
    await Promise.all(
      slots.map((s) => {
        s.exiting = true;
        return s.worker.terminate().catch(() => undefined);
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb, maxYoungGenerationSizeMb: ENCODER_YOUNG_GENERATION_MB } });
    const slot: Slot = { worker, tasks: new Map(), live: new Set(), listens: new Map(), maxLagMs: 0, exiting: false, dead: false };
    worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
    // An 'error' is always followed by 'exit'; what the worker owed is failed there, once.
    worker.on('error', (err) => {
      slot.dead = true;
      this.failTasks(slot, new TallenneError('TALLENNE_ENCODE_FAILED', `encoder worker crashed: ${err.message}`));
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    // Idle workers must not keep the process alive on their own.
    worker.unref();
    return slot;
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    if (reply.op === 'load') {
      slot.maxLagMs = reply.maxLagMs;
      return;
    }
    if (reply.op === 'listen-page') {
      const sink = slot.listens.get(reply.listen);
      const bytes = reply.page.byteLength;
      // A view on the moved buffer: no copy on this side either.
      sink?.page(Buffer.from(reply.page), () => {
        if (slot.listens.has(reply.listen)) slot.worker.postMessage({ op: 'listen-ack', listen: reply.listen, bytes } satisfies WorkerRequest);
      });
      return;
    }
    if (reply.op === 'listen-end') {
      const sink = slot.listens.get(reply.listen);
      slot.listens.delete(reply.listen);
      this.unrefIfIdle(slot);
      sink?.end(reply.end);
      return;
    }
    const t = slot.tasks.get(reply.seq);
    if (!t) return;
    slot.tasks.delete(reply.seq);
    this.idleDeaths = 0;
    this.unrefIfIdle(slot);
    if (reply.ok) t.resolve(reply.result);
    else {
      const code: ErrorCode = reply.code in ERROR_CODES ? (reply.code as ErrorCode) : 'TALLENNE_ENCODE_FAILED';
      t.reject(new TallenneError(code, reply.message));
    }
    this.checkDrained();
  }

  private unrefIfIdle(slot: Slot): void {
    if (slot.tasks.size === 0 && slot.live.size === 0 && slot.listens.size === 0) slot.worker.unref();
  }

  private failTasks(slot: Slot, err: Error): void {
    const tasks = [...slot.tasks.values()];
    slot.tasks.clear();
    for (const t of tasks) t.reject(err);
  }

  private onExit(slot: Slot, code: number): void {
    const hadWork = slot.tasks.size > 0 || slot.live.size > 0 || slot.listens.size > 0;
    this.failTasks(slot, new TallenneError('TALLENNE_ENCODE_FAILED', `encoder worker exited with code ${code}`));
    endListens(slot, { reason: slot.exiting ? 'shutdown' : 'failed', bytes: 0, frames: 0, code: 'TALLENNE_ENCODE_FAILED', message: `encoder worker exited with code ${code}` });
    // Its live calls are finished from their whole spool on another worker.
    for (const id of slot.live) this.owner.delete(id);
    slot.live.clear();
    const i = this.slots.indexOf(slot);
    if (i < 0 || slot.exiting) return;
    this.crashes++;
    // A worker that dies with no work cannot blame a spool: after a few in a row, stop
    // respawning (a crash loop) and fail what waits instead of leaving it hanging.
    if (!hadWork && ++this.idleDeaths >= MAX_IDLE_DEATHS) this.broken = true;
    if (this.destroyed || this.broken || (this.closing && this.waiting.length === 0)) this.slots.splice(i, 1);
    else this.slots[i] = this.spawn();
    this.dispatchWaiting();
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.waiting.length > 0 || this.slots.some((s) => s.tasks.size > 0)) return;
    const w = this.drainWaiters.splice(0);
    for (const f of w) f();
  }
}

/** A worker's share of the work, for placing the next call or listen. */
function load(s: Slot): number {
  return s.live.size + s.tasks.size + s.listens.size;
}

/** Ends the listens of a worker that will send no more (it exited, or is being terminated). */
function endListens(slot: Slot, end: ListenEnd): void {
  const sinks = [...slot.listens.values()];
  slot.listens.clear();
  for (const sink of sinks) sink.end(end);
}
