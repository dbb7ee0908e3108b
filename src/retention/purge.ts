/**
 * The purge job: automatic destruction of what has expired. Each run first completes any
 * destruction a crashed run left half done, then destroys recordings whose metadata period
 * has ended (file and entry), then the audio of recordings whose audio period has ended
 * (the entry stays, marked audio-purged). Both lists come from the expiry indexes, so a run
 * touches only what is due. Every destruction is audited with the recording id and policy
 * name, never personal data. Last, the pass deletes the register's lease rows that ran out
 * long ago (a killed node's INVITE claims and spool leases, a claim whose release failed),
 * so the leases do not pile up. The daemon calls start(interval); `tallenne retention run` calls runOnce().
 */
import { basename } from 'node:path';
import type { Logger } from '../log.js';
import { everyStored, type AudioStore } from '../storage/audio-store.js';
import type { RecordingIndex } from '../index/index.js';
import type { RecordingEntry } from '../types.js';
import { completeIntent, destroyRecording, type DestroyHooks } from './destroy.js';

export const PURGE_ACTOR = 'system:purge';
const BATCH = 200;
const DRY_RUN_MAX = 10_000;

/**
 * How long a lease row stays after it ran out before the pass deletes it. A lapsed lease
 * nobody has taken can still be renewed by its holder (a node that stalled, or lost the
 * register for a while): it gets this long to come back, longer than any lease we take
 * lasts. Meanwhile the lapsed lease holds nothing (anyone may claim it); only its row stays.
 */
export const LEASE_GRACE_MS = 10 * 60_000;

export interface PurgeReport {
  dryRun: boolean;
  /** Recordings whose audio was deleted (metadata kept). In a dry run: would be. */
  audio: string[];
  /** Recordings deleted entirely. In a dry run: would be. */
  metadata: string[];
  /** Destructions interrupted earlier and completed now. */
  resumed: string[];
  errors: Array<{ id: string; message: string }>;
  /** A dry run lists at most 10,000 of each kind; true when there are more. */
  truncated: boolean;
  /** Lease rows deleted because they ran out more than LEASE_GRACE_MS ago (none in a dry run). */
  leasesRemoved: number;
  /** Another node sharing the register was running its pass: this one did nothing. */
  busyElsewhere?: true;
}

/**
 * Runs a job while this process holds a lock shared by every node of the register, or
 * reports at once that another node holds it (src/index/open.ts gives one for PostgreSQL).
 */
export type JobLock = <T>(fn: () => Promise<T>) => Promise<{ locked: true; value: T } | { locked: false }>;

export interface OrphanReport {
  /** Audio keys with no index entry (or whose entry points elsewhere or says purged). */
  orphanFiles: string[];
  /** Orphan files left alone because they may belong to a recording being committed right now. */
  recentOrphanFiles: string[];
  /** Ids of entries that claim audio but have no file. */
  missingFiles: string[];
  /** Orphan files deleted (with `remove`). */
  removedFiles: number;
  /** Entries marked audio-purged because their file was gone (with `repair`). */
  repairedEntries: number;
}

export interface PurgerOptions {
  index: RecordingIndex;
  store: AudioStore;
  log?: Logger;
  now?: () => number;
  /** Keeps a pass to one node at a time when several share the register. */
  lock?: JobLock;
}

export class Purger {
  private readonly index: RecordingIndex;
  private readonly store: AudioStore;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private readonly lock: JobLock | undefined;
  private timer: NodeJS.Timeout | undefined;
  private intervalMs = 0;
  private running: Promise<unknown> | undefined;
  private readonly totals = { audio: 0, metadata: 0 };
  private leaseRowsRemoved = 0;
  private runsDone = 0;

  constructor(opts: PurgerOptions) {
    this.index = opts.index;
    this.store = opts.store;
    this.log = opts.log;
    this.now = opts.now ?? Date.now;
    this.lock = opts.lock;
  }

  /** Purge runs completed by this process (for metrics: the job is alive and keeps its pace). */
  get runs(): number {
    return this.runsDone;
  }

  /** Destructions done by this process since it started (for metrics). */
  get purgedTotal(): { readonly audio: number; readonly metadata: number } {
    return { ...this.totals };
  }

  /** Expired lease rows this process's passes deleted since it started (for metrics). */
  get leasesRemoved(): number {
    return this.leaseRowsRemoved;
  }

  async runOnce(opts: { dryRun?: boolean; actor?: string; hooks?: DestroyHooks } = {}): Promise<PurgeReport> {
    const now = this.now();
    const report: PurgeReport = { dryRun: opts.dryRun === true, audio: [], metadata: [], resumed: [], errors: [], truncated: false, leasesRemoved: 0 };
    if (opts.dryRun) return this.dryRun(now, report);
    if (!this.lock) return this.pass(now, report, opts);
    const r = await this.lock(() => this.pass(now, report, opts));
    if (r.locked) return r.value;
    this.log?.debug('purge pass skipped: another node is running one');
    return { ...report, busyElsewhere: true };
  }

  /**
   * One pass: interrupted destructions first (a node that died mid-pass left intents; they
   * are completed here), then what has expired.
   */
  private async pass(now: number, report: PurgeReport, opts: { actor?: string; hooks?: DestroyHooks }): Promise<PurgeReport> {
    const actor = opts.actor ?? PURGE_ACTOR;
    const hooks = opts.hooks ?? {};

    for (const { id, intent } of await this.index.intents(DRY_RUN_MAX)) {
      try {
        await completeIntent(this.index, this.store, id, intent, this.now, hooks, true);
        report.resumed.push(id);
        this.count(intent.kind === 'audio' ? 'audio' : 'metadata', id, intent.details?.policy);
      } catch (e) {
        report.errors.push({ id, message: (e as Error).message });
      }
    }

    await this.drain(() => this.index.expiredMetadata(now, BATCH), 'recording', now, actor, hooks, report, report.metadata);
    await this.drain(() => this.index.expiredAudio(now, BATCH), 'audio', now, actor, hooks, report, report.audio);
    report.leasesRemoved = await this.removeExpiredLeases();
    if (report.audio.length + report.metadata.length + report.resumed.length + report.leasesRemoved > 0 || report.errors.length > 0) {
      this.log?.info({ audio: report.audio.length, metadata: report.metadata.length, resumed: report.resumed.length, leases: report.leasesRemoved, errors: report.errors.length }, 'purge run');
    }
    this.runsDone++;
    return report;
  }

  /** The register's own clock decides what ran out; a failure here leaves the rows for the next pass. */
  private async removeExpiredLeases(): Promise<number> {
    try {
      const n = await this.index.removeExpiredLeases(LEASE_GRACE_MS);
      this.leaseRowsRemoved += n;
      return n;
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, 'could not delete expired leases; the next purge pass tries again');
      return 0;
    }
  }

  private async drain(
    next: () => Promise<RecordingEntry[]>,
    kind: 'audio' | 'recording',
    now: number,
    actor: string,
    hooks: DestroyHooks,
    report: PurgeReport,
    done: string[],
  ): Promise<void> {
    const attempted = new Set<string>();
    for (;;) {
      const batch = (await next()).filter((e) => !attempted.has(e.id));
      // Entries that failed stay in the expiry index; stop once only they are left.
      if (batch.length === 0) return;
      for (const e of batch) {
        attempted.add(e.id);
        try {
          const r = await destroyRecording(
            this.index,
            this.store,
            e,
            { kind, actor, action: kind === 'audio' ? 'purge-audio' : 'purge-recording', condition: { expiredBy: now } },
            this.now,
            hooks,
          );
          if (r.done) {
            done.push(e.id);
            this.count(kind === 'audio' ? 'audio' : 'metadata', e.id, e.retention?.policy);
          }
        } catch (err) {
          report.errors.push({ id: e.id, message: (err as Error).message });
          this.log?.error({ recordingId: e.id, err: (err as Error).message }, 'purge failed');
        }
      }
    }
  }

  private count(kind: 'audio' | 'metadata', id: string, policy: unknown): void {
    this.totals[kind]++;
    this.log?.debug({ recordingId: id, policy, kind }, 'purged');
  }

  private async dryRun(now: number, report: PurgeReport): Promise<PurgeReport> {
    const meta = await this.index.expiredMetadata(now, DRY_RUN_MAX + 1);
    const audio = await this.index.expiredAudio(now, DRY_RUN_MAX + 1);
    report.truncated = meta.length > DRY_RUN_MAX || audio.length > DRY_RUN_MAX;
    report.metadata = meta.slice(0, DRY_RUN_MAX).map((e) => e.id);
    const whole = new Set(report.metadata);
    report.audio = audio.slice(0, DRY_RUN_MAX).filter((e) => !whole.has(e.id)).map((e) => e.id);
    report.resumed = (await this.index.intents(DRY_RUN_MAX)).map((i) => i.id);
    return report;
  }

  /**
   * Runs the purge every `intervalMs` (one run at a time); the timer does not keep the process
   * alive. Node's timers hold at most 2^31 − 1 ms (about 24.8 days) and fire at once beyond
   * that, so a longer interval runs at that pace instead: purging early destroys nothing
   * that has not expired.
   */
  start(intervalMs: number): void {
    if (this.timer) return;
    this.intervalMs = paceOf(intervalMs);
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((e: unknown) => this.log?.error({ err: (e as Error).message }, 'purge run failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Changes the pace of a started purge job (a reload): the next run is one new interval away. */
  setInterval(intervalMs: number): void {
    if (!this.timer || paceOf(intervalMs) === this.intervalMs) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.start(intervalMs);
    this.log?.info({ intervalMs: this.intervalMs }, 'purge interval changed');
  }

  /** Stops the timer and waits for a run in progress. Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Compares the audio store with the index. Orphan files younger than `graceMs` (by the
   * time in their ULID / UUIDv7 id) are only reported: the daemon commits the file just
   * before its entry. `remove` deletes the older orphans; `repair` marks entries whose file
   * is gone as audio-purged, so nothing points at nothing. Both are audited.
   */
  async sweepOrphans(opts: { remove?: boolean; repair?: boolean; graceMs?: number; actor?: string } = {}): Promise<OrphanReport> {
    const grace = opts.graceMs ?? 3_600_000;
    const actor = opts.actor ?? PURGE_ACTOR;
    const now = this.now();
    const report: OrphanReport = { orphanFiles: [], recentOrphanFiles: [], missingFiles: [], removedFiles: 0, repairedEntries: 0 };

    // Every stored key, a page at a time; kept to find the entries whose audio is gone below.
    const stored = new Set<string>();
    for await (const { key } of everyStored(this.store)) {
      stored.add(key);
      const id = basename(key, '.opus');
      const e = await this.index.get(id);
      if (e && e.file === key && e.audioPurgedAt === undefined) continue;
      if (await this.index.getIntent(id)) continue; // a destruction in progress owns it
      const born = idTime(id);
      if (born === null || now - born < grace) {
        report.recentOrphanFiles.push(key);
        continue;
      }
      report.orphanFiles.push(key);
      if (opts.remove && (await this.store.remove(key))) {
        report.removedFiles++;
        await this.index.audit.append({ actor, action: 'orphan-file-removed', ...(e ? { recordingId: id } : {}), details: { file: key } });
      }
    }

    let cursor: string | undefined;
    do {
      const page = await this.index.list({}, cursor === undefined ? { limit: 1000 } : { cursor, limit: 1000 });
      for (const e of page.items) {
        if (e.audioPurgedAt !== undefined || stored.has(e.file) || (await this.index.getIntent(e.id))) continue;
        report.missingFiles.push(e.id);
        if (opts.repair) {
          const at = new Date(this.now()).toISOString();
          await this.index.update(e.id, (x) => ({ ...x, audioPurgedAt: x.audioPurgedAt ?? at, fileBytes: 0 }), {
            audit: { actor, action: 'audio-missing', recordingId: e.id, details: { file: e.file } },
          });
          report.repairedEntries++;
        }
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return report;
  }
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** Creation time carried by a ULID or a UUIDv7; null for any other id. */
export function idTime(id: string): number | null {
  if (/^[0-9A-HJKMNP-TV-Z]{26}$/i.test(id)) {
    let t = 0;
    for (const ch of id.slice(0, 10).toUpperCase()) t = t * 32 + CROCKFORD.indexOf(ch);
    return t;
  }
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/i.exec(id);
  if (m) return parseInt(m[1]! + m[2]!, 16);
  return null;
}

/** The longest delay a Node timer keeps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The purge timer's period for a configured interval: at least 1 s, at most what a timer keeps. */
export function paceOf(intervalMs: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(1000, intervalMs));
}
