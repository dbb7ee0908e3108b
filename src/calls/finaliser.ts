/**
 * The Finaliser carries each call from its spool to a stored recording:
 *
 *   answered → the encoder follows the spool → spool closed → the encoder finishes the tail
 *   → audio file → register entry (retention + index) → spool deleted
 *
 * The spool is deleted only once the audio file and its index entry are durable. A failure
 * keeps the spool and tries again later, backing off; a spool left by an earlier run (crash,
 * kill, failed encode) is finalised at start-up. It takes ended calls from the call manager's
 * `ended` event and knows nothing of SIP or RTP.
 */
import { readdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { EncodeJob, EncodeResult } from '../encoder/encode-spool.js';
import type { RecordingEntry } from '../types.js';
import { withRetention } from '../retention/policy.js';
import { entryFrom } from './recording-meta.js';

export interface FinaliserEvents {
  /** `finaliseMs`: from the call's end (its hand-over) to its entry being stored; null for a recovered spool or a retry. */
  recorded: [entry: RecordingEntry, result: EncodeResult, finaliseMs: number | null];
  /** Emitted once per recording, on its first failure; the spool is kept. */
  failed: [id: string, err: Error];
}

export interface FinaliserDeps {
  /** The config in force now (encoder settings and retention are reloadable). */
  readonly config: () => Config;
  readonly log: Logger;
  readonly encoder: {
    /** Start encoding a live call as its spool grows. */
    follow(job: EncodeJob): void;
    /** The call's spool is closed: finish what follow() started (or the whole spool). */
    finish(job: EncodeJob): Promise<EncodeResult>;
    /** A whole spool in one go (recovery, retries). */
    encode(job: EncodeJob): Promise<EncodeResult>;
  };
  readonly index: { put(entry: RecordingEntry): Promise<unknown> };
  readonly spoolDir: string;
  /** Backoff of retries; defaults: 30 s doubling up to 10 min. */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
}

/** A call just answered: its spool is being written. */
export interface LiveCall {
  readonly id: string;
  readonly spoolPath: string;
}

/** An ended call handed over by the manager: its spool is being closed. */
export interface EndedCall {
  readonly id: string;
  readonly spoolPath: string;
  /** Resolves when the spool's END record is written and the file closed. */
  readonly closed: Promise<void>;
}

const RETRY = { baseMs: 30_000, maxMs: 600_000 };

export class Finaliser extends EventEmitter<FinaliserEvents> {
  private readonly running = new Set<Promise<void>>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private retrying = true;
  /** The encode settings of each followed call, fixed when it was answered. */
  private readonly followed = new Map<string, EncodeJob>();

  constructor(private readonly deps: FinaliserDeps) {
    super();
  }

  /** Ended calls not yet stored (or failed). */
  get pending(): number {
    return this.running.size;
  }

  /** A call was answered: the encoder follows its spool from now on, with the settings in force now. */
  follow(call: LiveCall): void {
    const job = this.jobFor(call.spoolPath, call.id);
    this.followed.set(call.id, job);
    this.deps.encoder.follow(job);
  }

  /** Takes an ended call: once its spool is closed its recording is finished and registered. */
  take(call: EndedCall): void {
    const endedAt = Date.now();
    const job = this.followed.get(call.id) ?? this.jobFor(call.spoolPath, call.id);
    this.followed.delete(call.id);
    this.track(call.closed.then(() => this.finalise(job, 0, endedAt)));
  }

  /** At start-up: every spool left behind becomes a recording. Returns how many there were. */
  recoverSpools(): number {
    let n = 0;
    for (const name of readdirSync(this.deps.spoolDir)) {
      if (!name.endsWith('.spool')) continue;
      const id = name.slice(0, -'.spool'.length);
      this.deps.log.warn({ recording: id }, 'recovering a spool left by an earlier run');
      this.track(this.finalise(this.jobFor(join(this.deps.spoolDir, name), id)));
      n++;
    }
    return n;
  }

  /** Resolves when every call taken so far is stored (or has failed). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  /** No more retries from now on (stopping): a spool that fails waits for the next start. */
  stopRetrying(): void {
    this.retrying = false;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
  }

  close(): void {
    this.stopRetrying();
  }

  private track(p: Promise<void>): void {
    const done: Promise<void> = p.finally(() => this.running.delete(done));
    this.running.add(done);
  }

  private jobFor(spoolPath: string, id: string): EncodeJob {
    const c = this.deps.config();
    return { spoolPath, storageDir: c.storage.dir, id, complexity: c.encoder.complexity, bitrate: c.encoder.bitrate, skipSilence: c.encoder.skip_silence, maskDtmf: c.privacy.mask_dtmf };
  }

  /** `endedAt` (ms) is set for a call that just ended (the encoder followed it live). */
  private async finalise(job: EncodeJob, attempt = 0, endedAt: number | null = null): Promise<void> {
    const { spoolPath, id } = job;
    const log = this.deps.log.child({ recording: id });
    const c = this.deps.config();
    const settings = { complexity: job.complexity, bitrate: job.bitrate, skipSilence: job.skipSilence, maskDtmf: job.maskDtmf };
    try {
      const result = await (endedAt !== null ? this.deps.encoder.finish(job) : this.deps.encoder.encode(job));
      const entry = withRetention(entryFrom(result), c.retention, { defaultCountry: c.privacy.default_country });
      await this.deps.index.put(entry);
      await unlink(spoolPath);
      const finaliseMs = endedAt !== null ? Date.now() - endedAt : null;
      log.info({ status: entry.status, durationMs: entry.durationMs, bytes: entry.fileBytes, file: entry.file, encoder: settings, finaliseMs }, 'recording stored');
      this.emit('recorded', entry, result, finaliseMs);
    } catch (e) {
      // Counted once per recording; the spool stays and later attempts may still store it.
      if (attempt === 0) this.emit('failed', id, e as Error);
      const retryInMs = this.scheduleRetry(job, attempt);
      log.error({ err: e, attempt, retryInMs }, retryInMs === null
        ? 'finalising the recording failed; the spool is kept and finalised at the next start'
        : 'finalising the recording failed; the spool is kept and tried again');
    }
  }

  /** Tries a failed finalisation again later (a full disk freed, a worker replaced). */
  private scheduleRetry(job: EncodeJob, attempt: number): number | null {
    const id = job.id;
    if (!this.retrying || this.retries.has(id)) return null;
    const { baseMs, maxMs } = this.deps.retry ?? RETRY;
    const delay = Math.min(baseMs * 2 ** attempt, maxMs);
    const timer = setTimeout(() => {
      this.retries.delete(id);
      // A retry takes the settings in force then, like a recovered spool.
      this.track(this.finalise(this.jobFor(job.spoolPath, id), attempt + 1));
    }, delay);
    timer.unref();
    this.retries.set(id, timer);
    return delay;
  }
}
