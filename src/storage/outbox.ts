/**
 * The local outbox of a remote audio store: finished recordings staged on local disk (its
 * staging area, staging.ts) that are not yet confirmed in the bucket. A delivery that fails (S3 down, refusing, or holding other
 * bytes than were sent) is tried again after 1 s, doubling up to 1 min, for as long as it
 * takes; calls go on being recorded meanwhile, and each recording's spool stays until its
 * audio is confirmed and its entry committed (src/calls/finaliser.ts).
 *
 * The outbox is a folder (`storage.dir/outbox`), so it survives a restart: what an earlier run
 * left there is counted until it is staged again (its spool is finalised again at start-up).
 * It owns the backlog figures that readiness and the metrics show.
 */
import { readdirSync } from 'node:fs';
import { TallenneError } from '../errors.js';
import type { StagingArea } from './audio-store.js';
import { localStaging, removeStaged } from './staging.js';

export interface OutboxOptions {
  /** First retry delay, doubled each time up to maxMs. */
  readonly baseMs?: number;
  readonly maxMs?: number;
  /** Told of each failed attempt (for the log). */
  readonly onFailure?: (key: string, err: Error, attempt: number, retryInMs: number) => void;
}

/** Staged files are `.<key, URI-encoded>.staged` (staging.ts). */
const STAGED = /^\.(.+)\.staged$/;

/** An error that another attempt cannot mend: the delivery rejects at once. */
export class Undeliverable extends TallenneError {}

export class Outbox {
  readonly area: StagingArea;
  private readonly baseMs: number;
  private readonly maxMs: number;
  /** Keys staged (or left by an earlier run) whose upload is not confirmed yet. */
  private readonly pending = new Set<string>();
  private readonly waits = new Map<string, { timer: NodeJS.Timeout; reject: (e: Error) => void }>();
  private failed = 0;
  private last: string | null = null;
  private closed = false;

  constructor(dir: string, private readonly opts: OutboxOptions = {}) {
    this.area = localStaging(dir);
    this.baseMs = opts.baseMs ?? 1000;
    this.maxMs = opts.maxMs ?? 60_000;
    for (const name of readdirSync(dir)) {
      const m = STAGED.exec(name);
      if (m) this.pending.add(decodeURIComponent(m[1]!));
    }
  }

  /** Recordings waiting for their upload to be confirmed. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Failed upload attempts since start. */
  get failures(): number {
    return this.failed;
  }

  /** Why the latest attempt failed; null once one succeeded after it. */
  get lastError(): string | null {
    return this.last;
  }

  /** Drops a staged recording (its writer was aborted). */
  discard(key: string): void {
    removeStaged(this.area, key);
    this.pending.delete(key);
  }

  /**
   * Runs `send` until it succeeds, backing off between attempts; then removes the staged file.
   * An Undeliverable error rejects at once (the finaliser tries the recording again from its spool).
   * Once the outbox is closed (the daemon stopping) a failed attempt is not repeated: it
   * rejects, the spool is kept and the recording is finalised again at the next start.
   */
  async deliver<T>(key: string, send: () => Promise<T>): Promise<T> {
    this.pending.add(key);
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0 && this.closed) throw stopped(key);
      try {
        const out = await send();
        this.last = null;
        removeStaged(this.area, key);
        this.pending.delete(key);
        return out;
      } catch (e) {
        this.failed++;
        this.last = (e as Error).message;
        if (e instanceof Undeliverable) {
          this.pending.delete(key);
          throw e;
        }
        if (this.closed) throw stopped(key);
        const delay = Math.min(this.baseMs * 2 ** attempt, this.maxMs);
        this.opts.onFailure?.(key, e as Error, attempt, delay);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            this.waits.delete(key);
            resolve();
          }, delay);
          this.waits.set(key, { timer, reject });
        });
      }
    }
  }

  /** No more retries: deliveries waiting for their next try reject (their files stay); a first attempt still runs once. */
  close(): void {
    this.closed = true;
    for (const [key, w] of this.waits) {
      clearTimeout(w.timer);
      w.reject(stopped(key));
    }
    this.waits.clear();
  }
}

function stopped(key: string): TallenneError {
  return new TallenneError('TALLENNE_STORAGE_UNAVAILABLE', `${key}: not uploaded before the store closed; it stays in the outbox and its spool is finalised again at the next start`);
}
