/**
 * What one encoder worker thread does: it follows the live calls the pool gave it and
 * finishes the ones whose spool is closed.
 *
 * A pass runs every TICK_MS: each live call's CallEncoder reads the records its spool gained
 * since the last pass and encodes up to LAG_MS behind them; each ended call (in the order
 * they were handed over, which is hang-up order) reads its tail, is finished and answered.
 * Normally live calls go first, so every call's lag stays near LAG_MS and an ended call has
 * only its last second left. When the thread has fallen behind (a live call lags more than
 * BEHIND_MS: overload, a slow disk) ended calls go first, in hang-up order, and live calls
 * catch up from their spools after; the spool holds the call meanwhile, so nothing is lost.
 *
 * A call whose live encoding failed, or that the thread never followed (recovery, a retry,
 * a call that started on a thread that has since died), is encoded from its whole spool when
 * it is finished: the same pipeline, in one go.
 *
 * Live listens run here too, each a ListenStream (listen-stream.ts) with its own 100 ms
 * steps beside the passes: its pages go back to the pool as transferred buffers, the pool
 * acknowledges them once they have left for the listener, and a stop ends it at its next
 * step.
 */
import { CallEncoder } from './call-encoder.js';
import { LAG_MS } from './timeline.js';
import { TallenneError } from '../errors.js';
import { wholeSpoolEncoder, type EncodeJob, type EncodeResult } from './encode-spool.js';
import { ListenStream, type ListenEnd, type ListenJob } from './listen-stream.js';

export type WorkerRequest =
  /** Start following a live call's spool. */
  | { readonly op: 'follow'; readonly job: EncodeJob }
  /** The call's spool is closed: finish its recording and answer with `seq`. */
  | { readonly op: 'finish'; readonly seq: number; readonly job: EncodeJob }
  /** Start live listen `listen` (its job's spool key is the stream's own, transferred). */
  | { readonly op: 'listen'; readonly listen: number; readonly job: ListenJob }
  /** `bytes` of the listen's pages have left for the listener. */
  | { readonly op: 'listen-ack'; readonly listen: number; readonly bytes: number }
  /** The listened call has ended: the stream ends once its spool has no more. */
  | { readonly op: 'listen-call-ended'; readonly listen: number }
  /** The listener went away: stop now. */
  | { readonly op: 'listen-stop'; readonly listen: number };

export type WorkerReply =
  | { readonly op: 'done'; readonly seq: number; readonly ok: true; readonly result: EncodeResult }
  | { readonly op: 'done'; readonly seq: number; readonly ok: false; readonly code: string; readonly message: string }
  /** After each pass: calls followed and the largest lag among them. */
  | { readonly op: 'load'; readonly live: number; readonly maxLagMs: number }
  /** One Ogg page of a listen, its buffer transferred. */
  | { readonly op: 'listen-page'; readonly listen: number; readonly page: ArrayBuffer }
  /** The listen is over; nothing more comes for it. */
  | { readonly op: 'listen-end'; readonly listen: number; readonly end: ListenEnd };

/** Sends a reply to the pool; buffers in `transfer` move to it (no copy). */
export type ReplySender = (reply: WorkerReply, transfer?: ArrayBuffer[]) => void;

/**
 * The thread does one call's step at a time and nothing else meanwhile, so its spool reads
 * block (SpoolFollowerOptions.blockingReads): no thread-pool hop and no promise per read.
 */
const READS = { blockingReads: true } as const;

/** How often each live call's new records are encoded. */
export const TICK_MS = 250;
/** A live call further behind than this means the thread is behind: ended calls go first. */
export const BEHIND_MS = LAG_MS + 4 * TICK_MS;

export interface EncoderThreadOptions {
  /** Runs before each call's step (tests slow a worker down with it). */
  readonly beforeStep?: () => void;
}

interface Ending {
  readonly seq: number;
  readonly job: EncodeJob;
}

export class EncoderThread {
  private readonly live = new Map<string, CallEncoder>();
  private readonly ending: Ending[] = [];
  private readonly listens = new Map<number, ListenStream>();
  private running = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly send: ReplySender,
    private readonly opts: EncoderThreadOptions = {},
  ) {}

  handle(req: WorkerRequest): void {
    switch (req.op) {
      case 'follow':
        if (!this.live.has(req.job.id)) this.live.set(req.job.id, new CallEncoder(req.job, READS));
        break;
      case 'finish':
        this.ending.push({ seq: req.seq, job: req.job });
        break;
      case 'listen':
        this.listen(req.listen, req.job);
        return;
      case 'listen-ack':
        this.listens.get(req.listen)?.ack(req.bytes);
        return;
      case 'listen-call-ended':
        this.listens.get(req.listen)?.callEnded();
        return;
      case 'listen-stop':
        this.listens.get(req.listen)?.stop();
        return;
    }
    this.schedule(0);
  }

  private listen(n: number, job: ListenJob): void {
    if (this.listens.has(n)) return;
    const stream = new ListenStream(job, {
      onPage: (page) => this.send({ op: 'listen-page', listen: n, page: page.buffer as ArrayBuffer }, [page.buffer as ArrayBuffer]),
    });
    this.listens.set(n, stream);
    const ended = (end: ListenEnd): void => {
      this.listens.delete(n);
      this.send({ op: 'listen-end', listen: n, end });
    };
    // run() answers its own errors; closing the spool can still fail after it.
    void stream.run().then(ended, (e: unknown) => ended({ reason: 'failed', bytes: 0, frames: stream.frameCount, code: 'TALLENNE_ENCODE_FAILED', message: (e as Error).message }));
  }

  private schedule(ms: number): void {
    if (this.running) return;
    if (this.timer) {
      if (ms > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pass();
    }, ms);
  }

  private async pass(): Promise<void> {
    this.running = true;
    try {
      const now = Date.now();
      let behind = false;
      for (const enc of this.live.values()) if (enc.lagMs(now) > BEHIND_MS) behind = true;
      if (behind) {
        await this.finishEnded();
        await this.followLive();
      } else {
        await this.followLive();
        await this.finishEnded();
      }
      let maxLagMs = 0;
      const after = Date.now();
      for (const enc of this.live.values()) maxLagMs = Math.max(maxLagMs, enc.lagMs(after));
      this.send({ op: 'load', live: this.live.size, maxLagMs });
    } finally {
      this.running = false;
    }
    if (this.ending.length > 0) this.schedule(0);
    else if (this.live.size > 0) this.schedule(TICK_MS);
  }

  private async followLive(): Promise<void> {
    for (const [id, enc] of [...this.live]) {
      if (this.ending.some((e) => e.job.id === id)) continue;
      this.opts.beforeStep?.();
      try {
        await enc.advance();
      } catch {
        // The encoder is dropped (its partial file removed); at hang-up the call is encoded
        // from its whole spool, and an error then is answered to the pool.
        this.live.delete(id);
        forgetKeys(enc.job);
      }
    }
  }

  /** Finishes the ended calls handed over so far, in order. */
  private async finishEnded(): Promise<void> {
    while (this.ending.length > 0) {
      const { seq, job } = this.ending.shift()!;
      this.opts.beforeStep?.();
      const enc = this.live.get(job.id) ?? wholeSpoolEncoder(job, READS);
      this.live.delete(job.id);
      try {
        const result = await enc.finish();
        this.send({ op: 'done', seq, ok: true, result });
      } catch (err) {
        const code = err instanceof TallenneError ? err.code : 'TALLENNE_ENCODE_FAILED';
        const message = err instanceof Error ? err.message : String(err);
        this.send({ op: 'done', seq, ok: false, code, message });
      } finally {
        forgetKeys(job);
        forgetKeys(enc.job);
      }
    }
  }
}

/** The job's raw keys are overwritten once the thread is done with them (they came as copies). */
function forgetKeys(job: Pick<EncodeJob, 'spoolKey' | 'dataKey'>): void {
  job.spoolKey?.fill(0);
  job.dataKey?.fill(0);
}
