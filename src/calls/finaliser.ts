/**
 * The Finaliser carries each call from its spool to a stored recording:
 *
 *   answered → the encoder follows the spool → spool closed → the encoder finishes the tail
 *   → staged audio (noted beside the spool) → the AudioStore publishes it (size + checksum)
 *   → register entry (retention + index) → note and spool deleted
 *
 * The spool is deleted only once the stored audio and its index entry are durable. A failure
 * keeps the spool and tries again later, backing off; a spool left by an earlier run (crash,
 * kill, failed encode) is finalised at start-up. It takes ended calls from the call manager's
 * `ended` event and knows nothing of SIP or RTP.
 */
import { TallenneError } from '../errors.js';
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { EncodeJob, EncodeResult } from '../encoder/encode-spool.js';
import type { ListenJob } from '../encoder/listen-stream.js';
import type { RecordingEntry } from '../types.js';
import { withRetention } from '../retention/policy.js';
import { newDataKey, type KeyWrapper, type WrappedKey } from '../crypto/keyring.js';
import { dataKeyContext, type AudioStore } from '../storage/audio-store.js';
import { verifyStaged } from '../storage/staging.js';
import { readStagedNote, removeStagedNote, writeStagedNote, type StagedNote } from './staged-note.js';
import { entryFrom } from './recording-meta.js';
import { isUnansweredSpool, spoolKeyOf } from '../spool/reader.js';
import type { SpoolLeases } from './spool-leases.js';

export interface FinaliserEvents {
  /**
   * `finaliseMs`: from the call's end (its hand-over) to its entry being stored; null for a
   * recovered spool or a retry. `result` is that of the encode that staged the recording (an
   * earlier attempt's when its staged recording was reused: counted now, as that attempt
   * stored nothing).
   */
  recorded: [entry: RecordingEntry, result: EncodeResult, finaliseMs: number | null];
  /**
   * A recovered spool or a retry found the recording an earlier attempt had staged: `reused`
   * when it passed its check and was published as it was, `reencoded` when it failed (the
   * spool was encoded again and the staged file replaced).
   */
  staged: [id: string, outcome: 'reused' | 'reencoded'];
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
  /** Where the encoder stages recordings, and what publishes them. */
  readonly store: Pick<AudioStore, 'staging' | 'publish'>;
  readonly spoolDir: string;
  /**
   * Wraps a fresh data key for each recording (encryption at rest); null or absent writes
   * plain files. The raw key goes to the encoder only; the wrapped one into the index entry.
   */
  readonly keys?: KeyWrapper | null;
  /**
   * The key ring, when spools may be sealed: each sealed spool's data key is unwrapped here
   * and handed to the encoder with the job, so the master key never leaves this thread.
   */
  readonly spoolKeys?: KeyWrapper;
  /**
   * Spool leases in the register: each spool is finalised under its lease, taken when the
   * call is answered or before a left-over spool is recovered. Absent: no other process
   * shares the spool folder.
   */
  readonly leases?: SpoolLeases;
  /** Backoff of retries; defaults: 30 s doubling up to 10 min. */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number };
}

/** A call just answered: its spool is being written. */
/** A recording's encode job with its keys, and the wrapped data key its entry stores. */
interface PreparedJob {
  readonly job: EncodeJob;
  readonly wrapped?: WrappedKey;
}

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
  /** Each followed call's job (settings fixed when it was answered, and its keys). */
  private readonly followed = new Map<string, Promise<PreparedJob>>();

  constructor(private readonly deps: FinaliserDeps) {
    super();
  }

  /** Ended calls not yet stored (or failed). */
  get pending(): number {
    return this.running.size;
  }

  /** A call was answered: the encoder follows its spool from now on, with the settings in force now. */
  follow(call: LiveCall): void {
    const prepared = this.prepare(call.spoolPath, call.id);
    this.followed.set(call.id, prepared);
    this.deps.leases?.claim(call.id).then(
      (ok) => {
        if (!ok) this.deps.log.error({ recording: call.id }, 'the spool of a live call is leased by another process');
      },
      (e: unknown) => this.deps.log.error({ recording: call.id, err: (e as Error).message }, 'could not take the lease of a live call\'s spool'),
    );
    // A job that cannot be prepared (a key that does not open) is not followed; at hang-up
    // the finalisation fails, is counted and retried like any other.
    prepared.then((p) => this.deps.encoder.follow(p.job), () => undefined);
  }

  /**
   * A live listen's job for a followed call, from `fromMs` on: the call's spool, its encoder
   * settings and a copy of its spool key (the same the encoder follows it with, unwrapped
   * once). Null when the call is not followed (not answered, or ended). Rejects as the call's
   * own job did when its key could not be opened.
   */
  async listenJob(id: string, fromMs: number): Promise<ListenJob | null> {
    const prepared = this.followed.get(id);
    if (!prepared) return null;
    const { job } = await prepared;
    // Ended meanwhile: its key is about to be overwritten, and there is nothing to listen to.
    if (this.followed.get(id) !== prepared) return null;
    return {
      spoolPath: job.spoolPath,
      fromMs,
      complexity: job.complexity,
      bitrate: job.bitrate,
      maskDtmf: job.maskDtmf,
      ...(job.spoolKey ? { spoolKey: Uint8Array.from(job.spoolKey) } : {}),
    };
  }

  /** Takes an ended call: once its spool is closed its recording is finished and registered. */
  take(call: EndedCall): void {
    const endedAt = Date.now();
    const prepared = this.followed.get(call.id);
    this.followed.delete(call.id);
    this.track(call.closed.then(() => this.finalise(call.spoolPath, call.id, 0, endedAt, prepared)));
  }

  /**
   * Every spool left behind becomes a recording: the daemon's own at start-up, or another
   * node's (`tallenne recover`). Each is taken under its lease first; a spool whose lease
   * another process holds (a live call there, or another recoverer) is left to it.
   * A spool cut off before its call was answered (killed between creating the file and the
   * 200 OK) holds nothing to record and could never be finalised: the daemon deletes its
   * own (`deleteUnanswered`); a recoverer leaves them, as a call still ringing on a live
   * node looks the same.
   */
  async recoverSpools(opts: { deleteUnanswered?: boolean } = {}): Promise<{ started: number; leasedElsewhere: number; unanswered: number }> {
    const out = { started: 0, leasedElsewhere: 0, unanswered: 0 };
    for (const name of readdirSync(this.deps.spoolDir)) {
      if (!name.endsWith('.spool')) continue;
      const id = name.slice(0, -'.spool'.length);
      const path = join(this.deps.spoolDir, name);
      if (this.followed.has(id)) continue;
      if (this.deps.leases && !(await this.deps.leases.claim(id))) {
        out.leasedElsewhere++;
        continue;
      }
      // Stored and deleted by another process between the listing and the lease.
      if (!existsSync(path)) {
        await this.deps.leases?.release(id);
        continue;
      }
      if (isUnansweredSpool(path)) {
        out.unanswered++;
        if (opts.deleteUnanswered) {
          this.deps.log.warn({ recording: id }, 'deleting the spool of a call stopped before it was answered (nothing was recorded)');
          unlinkSync(path);
        }
        await this.deps.leases?.release(id);
        continue;
      }
      this.deps.log.warn({ recording: id }, 'recovering a spool left by an earlier run');
      this.track(this.finalise(path, id));
      out.started++;
    }
    return out;
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
    return { spoolPath, staging: this.deps.store.staging, id, complexity: c.encoder.complexity, bitrate: c.encoder.bitrate, skipSilence: c.encoder.skip_silence, maskDtmf: c.privacy.mask_dtmf };
  }

  /**
   * The encode job of a recording with its keys: the sealed spool's data key, unwrapped here
   * by the key ring (the master key never leaves this thread), and a fresh data key for the
   * recording's file with its wrapped form for the index entry.
   */
  private async prepare(spoolPath: string, id: string): Promise<PreparedJob> {
    const job = this.jobFor(spoolPath, id);
    const spoolKey = this.deps.spoolKeys ? await spoolKeyOf(spoolPath, id, this.deps.spoolKeys) : undefined;
    const sealed = this.deps.keys ? newDataKey(this.deps.keys, dataKeyContext(id)) : null;
    return {
      job: { ...job, ...(spoolKey ? { spoolKey } : {}), ...(sealed ? { dataKey: sealed.key } : {}) },
      ...(sealed ? { wrapped: sealed.wrapped } : {}),
    };
  }

  /**
   * Encodes (or finishes) and registers one recording. `endedAt` (ms) is set for a call that
   * just ended; `prepared` is its job when the encoder followed it live.
   */
  private async finalise(spoolPath: string, id: string, attempt = 0, endedAt: number | null = null, prepared?: Promise<PreparedJob>): Promise<void> {
    const log = this.deps.log.child({ recording: id });
    const c = this.deps.config();
    const spoolDir = dirname(spoolPath);
    let prep: PreparedJob | undefined;
    try {
      // A recovered spool or a retry first looks for what an earlier attempt staged.
      let done: StagedNote | null = endedAt === null ? await this.earlierStaged(spoolDir, id, log) : null;
      let settings: Record<string, unknown> | undefined;
      if (!done) {
        prep = await (prepared ?? this.prepare(spoolPath, id));
        const { job } = prep;
        settings = { complexity: job.complexity, bitrate: job.bitrate, skipSilence: job.skipSilence, maskDtmf: job.maskDtmf };
        // A call that just ended is finished by the worker that followed it (or from its whole
        // spool there); recovery and retries encode the whole spool.
        const result = await (endedAt !== null ? this.deps.encoder.finish(job) : this.deps.encoder.encode(job));
        if (!result.staged) throw new TallenneError('TALLENNE_ENCODE_FAILED', `${id}: the encoder staged no recording`);
        done = { result: { ...result, staged: result.staged }, ...(prep.wrapped ? { wrapped: prep.wrapped } : {}) };
        await writeStagedNote(spoolDir, id, done);
      }
      const { result, wrapped } = done;
      const stored = await this.deps.store.publish(result.staged);
      const plain = withRetention(entryFrom(result, stored), c.retention, { defaultCountry: c.privacy.default_country });
      const entry: RecordingEntry = wrapped ? { ...plain, dataKey: wrapped } : plain;
      await this.deps.index.put(entry);
      await removeStagedNote(spoolDir, id);
      await unlink(spoolPath);
      await this.deps.leases?.release(id).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'could not give back the spool lease; it runs out by itself'));
      if (result.spoolRecordsRejected > 0) log.warn({ records: result.spoolRecordsRejected }, 'spool records failed authentication and were left out (tampered or damaged on disk)');
      const finaliseMs = endedAt !== null ? Date.now() - endedAt : null;
      log.info({ status: entry.status, durationMs: entry.durationMs, bytes: entry.fileBytes, file: entry.file, encoder: settings ?? 'reused', finaliseMs, ...(wrapped ? { masterKey: wrapped.keyId } : {}) }, 'recording stored');
      this.emit('recorded', entry, result, finaliseMs);
    } catch (e) {
      // Counted once per recording; the spool stays and later attempts may still store it.
      if (attempt === 0) this.emit('failed', id, e as Error);
      const retryInMs = this.scheduleRetry(spoolPath, id, attempt);
      log.error({ err: e, attempt, retryInMs }, retryInMs === null
        ? 'finalising the recording failed; the spool is kept and finalised at the next start'
        : 'finalising the recording failed; the spool is kept and tried again');
    } finally {
      // Raw keys are overwritten once this attempt is over; a retry prepares its own.
      prep?.job.spoolKey?.fill(0);
      prep?.job.dataKey?.fill(0);
    }
  }

  /**
   * The recording an earlier attempt encoded and staged, when its note is readable and the
   * staged file is whole (its size and SHA-256 as written); else null, the note dropped, and
   * the spool is encoded again (the new staged file replaces the old one, never uploaded).
   */
  private async earlierStaged(spoolDir: string, id: string, log: Logger): Promise<StagedNote | null> {
    const note = await readStagedNote(spoolDir, id, this.deps.store.staging);
    if (note === null) return null;
    const problem = note === 'unreadable' ? 'its note cannot be read' : await verifyStaged(note.result.staged);
    if (problem === null && note !== 'unreadable') {
      log.info({ key: note.result.staged.key, storedBytes: note.result.staged.storedBytes }, 'reusing the recording an earlier attempt staged (size and SHA-256 checked); the spool is not encoded again');
      this.emit('staged', id, 'reused');
      return note;
    }
    log.warn({ problem }, 'the recording an earlier attempt staged failed its check; encoding the spool again');
    await removeStagedNote(spoolDir, id);
    this.emit('staged', id, 'reencoded');
    return null;
  }

  /** Tries a failed finalisation again later (a full disk freed, a worker replaced). */
  private scheduleRetry(spoolPath: string, id: string, attempt: number): number | null {
    if (!this.retrying || this.retries.has(id)) return null;
    const { baseMs, maxMs } = this.deps.retry ?? RETRY;
    const delay = Math.min(baseMs * 2 ** attempt, maxMs);
    const timer = setTimeout(() => {
      this.retries.delete(id);
      // A retry takes the settings in force then, like a recovered spool.
      this.track(this.finalise(spoolPath, id, attempt + 1));
    }, delay);
    timer.unref();
    this.retries.set(id, timer);
    return delay;
  }

}
