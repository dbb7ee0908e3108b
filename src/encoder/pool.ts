/**
 * A fixed pool of encoder worker threads with a FIFO queue. One job per worker at a time; a
 * worker that dies fails its job with TALLENNE_ENCODE_FAILED and is replaced, so a bad
 * spool can never wedge the pool.
 *
 * close() stops taking jobs, lets the queue drain, then ends the workers; destroy() ends
 * them now and fails whatever was queued or running. Both are idempotent.
 */
import { Worker } from 'node:worker_threads';
import { ERROR_CODES, TallenneError, type ErrorCode } from '../errors.js';
import type { EncodeJob, EncodeResult } from './encode-spool.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

/**
 * The compiled worker. Under vitest this module runs from src/*.ts, but a worker thread
 * cannot load TypeScript, so it always starts the build output in dist/.
 */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? '../../dist/encoder/worker.js' : './worker.js', import.meta.url);

interface Pending {
  readonly job: EncodeJob;
  readonly resolve: (r: EncodeResult) => void;
  readonly reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task: (Pending & { seq: number }) | null;
  /** Being terminated by the pool: not replaced when it exits. */
  exiting: boolean;
  /** Reported an error: it will exit, so it takes no more jobs. */
  dead: boolean;
}

export interface EncoderPoolOptions {
  workers: number;
  /** Heap limit per worker thread (MiB); a runaway job fails instead of exhausting the box. */
  maxHeapMb?: number;
  /** Another worker script speaking the same messages (tests, alternative builds). */
  workerUrl?: URL;
}

/** Workers that die this many times in a row without finishing a job mark the pool broken. */
const MAX_IDLE_DEATHS = 3;

export class EncoderPool {
  private readonly size: number;
  private readonly maxHeapMb: number;
  private readonly workerUrl: URL;
  private idleDeaths = 0;
  private broken = false;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private seq = 0;
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

  get queueLength(): number {
    return this.queue.length;
  }

  get busy(): number {
    return this.slots.filter((s) => s.task !== null).length;
  }

  /** True while the pool takes jobs and has its workers. */
  get alive(): boolean {
    return !this.closing && !this.destroyed && !this.broken && this.slots.length === this.size;
  }

  encode(job: EncodeJob): Promise<EncodeResult> {
    if (this.closing || this.destroyed) return Promise.reject(new TallenneError('TALLENNE_SHUTTING_DOWN', 'the encoder pool is closed'));
    if (this.broken) return Promise.reject(new TallenneError('TALLENNE_ENCODE_FAILED', 'encoder workers cannot start'));
    return new Promise<EncodeResult>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
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
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const s of this.slots) {
      const t = s.task;
      s.task = null;
      t?.reject(err);
    }
    await this.terminateAll();
    this.checkDrained();
  }

  private async terminateAll(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(
      slots.map((s) => {
        s.exiting = true;
        return s.worker.terminate().catch(() => undefined);
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    const slot: Slot = { worker, task: null, exiting: false, dead: false };
    worker.on('message', (reply: WorkerReply) => this.onReply(slot, reply));
    // An 'error' is always followed by 'exit'; the job is failed there, once.
    worker.on('error', (err) => {
      slot.dead = true;
      if (slot.task) this.failTask(slot, `encoder worker crashed: ${err.message}`);
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    // Idle workers must not keep the process alive on their own.
    worker.unref();
    return slot;
  }

  private onReply(slot: Slot, reply: WorkerReply): void {
    const t = slot.task;
    if (!t || t.seq !== reply.seq) return;
    slot.task = null;
    slot.worker.unref();
    this.idleDeaths = 0;
    if (reply.ok) t.resolve(reply.result);
    else {
      const code: ErrorCode = reply.code in ERROR_CODES ? (reply.code as ErrorCode) : 'TALLENNE_ENCODE_FAILED';
      t.reject(new TallenneError(code, reply.message));
    }
    this.dispatch();
    this.checkDrained();
  }

  private failTask(slot: Slot, message: string): void {
    const t = slot.task;
    if (!t) return;
    slot.task = null;
    t.reject(new TallenneError('TALLENNE_ENCODE_FAILED', message));
  }

  private onExit(slot: Slot, code: number): void {
    const hadTask = slot.task !== null;
    this.failTask(slot, `encoder worker exited with code ${code}`);
    const i = this.slots.indexOf(slot);
    if (i < 0 || slot.exiting) return;
    this.crashes++;
    // A worker that dies with no job cannot blame a spool: after a few in a row, stop
    // respawning (a crash loop) and fail what waits instead of leaving it hanging.
    if (!hadTask && ++this.idleDeaths >= MAX_IDLE_DEATHS) this.broken = true;
    if (this.destroyed || this.broken || (this.closing && this.queue.length === 0)) {
      this.slots.splice(i, 1);
      if (this.broken && this.slots.length === 0) {
        const err = new TallenneError('TALLENNE_ENCODE_FAILED', 'encoder workers cannot start');
        for (const p of this.queue.splice(0)) p.reject(err);
      }
    } else {
      this.slots[i] = this.spawn();
    }
    this.dispatch();
    this.checkDrained();
  }

  private dispatch(): void {
    if (this.destroyed) return;
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task || slot.exiting || slot.dead) continue;
      const p = this.queue.shift()!;
      const seq = ++this.seq;
      slot.task = { ...p, seq };
      // A busy worker keeps the process alive until its job is answered.
      slot.worker.ref();
      slot.worker.postMessage({ seq, job: p.job } satisfies WorkerRequest);
    }
  }

  private checkDrained(): void {
    if (this.queue.length > 0 || this.slots.some((s) => s.task !== null)) return;
    const w = this.drainWaiters.splice(0);
    for (const f of w) f();
  }
}
