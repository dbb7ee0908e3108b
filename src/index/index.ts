/**
 * The recordings index: one LMDB environment at <storage>/index holding the recordings by
 * id, their ordered secondary indexes (time, agent, team, service number, number hash,
 * status, audio and metadata expiry), pending destruction intents, schema metadata and the
 * audit log. The only module that imports lmdb; everything else sees RecordingIndex (with its
 * AuditLog and UserDirectory), whose every method returns a Promise, so a shared SQL register
 * can stand in behind the same interface (tests/conformance holds the suite each one passes).
 *
 * Writes go through LMDB write transactions, which are serialised across processes: the
 * daemon and the CLI open the same environment and may write at the same time. A write
 * resolves once its transaction is committed and synced (overlappingSync is off).
 * Transaction callbacks never throw: lmdb-js commits what a callback wrote even when it
 * throws, so each callback validates first and reports a result instead.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';
import type { RecordingEntry, RecordingStatus } from '../types.js';
import type { WrappedKey } from '../crypto/keyring.js';
import { TallenneError } from '../errors.js';
import { LmdbAuditLog, type AuditInput, type AuditLog } from './audit.js';
import { LmdbUserDirectory, type UserDirectory } from './users.js';
import {
  AUDIO_EXPIRY_KIND,
  DATA_KEY_KIND,
  LOOKUP_KINDS,
  METADATA_EXPIRY_KIND,
  TIME_KIND,
  decodeCursor,
  effectiveAudioExpiry,
  effectiveMetadataExpiry,
  encodeCursor,
  keyDiff,
  keysOf,
  startMsOf,
  type IndexKey,
  type LookupField,
} from './keys.js';

export type { AuditEntry, AuditInput, AuditLog, AuditVerdict } from './audit.js';

export interface ListQuery {
  /** Start time (epoch ms), inclusive. */
  from?: number;
  /** Start time (epoch ms), exclusive. */
  to?: number;
  agentId?: string;
  team?: string;
  serviceNumber?: string;
  status?: RecordingStatus;
  numberHash?: string;
  /** SIPREC recording-session group: the sessions of one call across transfers. */
  groupId?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
  /** Index entries touched, for tests proving no full scan. */
  visited: number;
}

/** A destruction in progress, committed before any file is deleted (see src/retention/purge.ts). */
export interface DestroyIntent {
  /** 'audio': the file goes, the metadata stays; 'recording': file and entry go. */
  readonly kind: 'audio' | 'recording';
  /** The audio key to delete (absent when the audio is already gone). */
  readonly file?: string;
  readonly at: string;
  /** Who asked (the purge job, or an actor erasing on request) and why, for the audit entry. */
  readonly actor: string;
  readonly action: string;
  readonly reason?: string;
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

export interface IntentCondition {
  /** The part the intent destroys must have expired by this time (epoch ms). */
  expiredBy?: number;
  /** The recording must not be under a legal hold. */
  notHeld?: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type RecordingPatch = Partial<Mutable<Omit<RecordingEntry, 'id'>>>;

export interface WriteOptions {
  /** Audit entry appended in the same transaction as the change. */
  audit?: AuditInput;
  /** Drop the entry's destruction intent in the same transaction. */
  clearIntent?: boolean;
}

export interface RecordingIndex {
  /** Durable when it resolves; maintains every secondary index atomically. */
  put(entry: RecordingEntry, opts?: WriteOptions): Promise<void>;
  get(id: string): Promise<RecordingEntry | undefined>;
  /** Newest first. */
  list(q: ListQuery, page: { cursor?: string; limit: number }): Promise<Page<RecordingEntry>>;
  /**
   * Rectification, hold, release, audio purged. A patch value of `undefined` removes the
   * field. A function gets the current entry and returns the new one. Throws
   * TALLENNE_NOT_FOUND when there is no such recording.
   */
  update(id: string, patch: RecordingPatch | ((e: RecordingEntry) => RecordingEntry), opts?: WriteOptions): Promise<RecordingEntry>;
  /** True when the entry existed. Always drops a destruction intent of the id. */
  remove(id: string, opts?: WriteOptions): Promise<boolean>;
  expiredAudio(now: number, limit: number): Promise<RecordingEntry[]>;
  expiredMetadata(now: number, limit: number): Promise<RecordingEntry[]>;
  /**
   * Records a destruction intent; false (and nothing written) when the entry is gone or the
   * condition no longer holds inside the write transaction (a hold placed meanwhile by
   * another process, an expiry moved). In the same committed transaction the entry's
   * wrapped data key is dropped: from then on the audio cannot be decrypted (crypto-shredding),
   * whatever becomes of the file.
   */
  setIntent(id: string, intent: DestroyIntent, when?: IntentCondition): Promise<boolean>;
  getIntent(id: string): Promise<DestroyIntent | undefined>;
  intents(limit: number): Promise<Array<{ id: string; intent: DestroyIntent }>>;
  count(): Promise<number>;
  /** How many recordings' data keys each master key id wraps (ids the keyring no longer holds included). */
  dataKeyUsage(): Promise<Array<{ keyId: string; recordings: number }>>;
  /** Up to `limit` recordings whose data key is wrapped under master key `keyId`. */
  wrappedUnder(keyId: string, limit: number): Promise<RecordingEntry[]>;
  /**
   * Replaces recordings' wrapped data keys, each only if it is still wrapped under its
   * `fromKeyId` (else skipped: purged, rewrapped meanwhile, or gone), in one committed
   * transaction. Returns how many were replaced.
   */
  rewrapDataKeys(items: ReadonlyArray<{ id: string; fromKeyId: string; wrapped: WrappedKey }>): Promise<number>;
  /** Small named records of the index's own (e.g. a key rotation in progress); undefined removes. */
  getMark<T>(name: string): Promise<T | undefined>;
  setMark(name: string, value: unknown, opts?: { audit?: AuditInput }): Promise<void>;
  /**
   * Takes lease `name` for `holder` until ttlMs from now (the register's clock), or renews it
   * when `holder` has it already. False, and nothing written, while another holder's lease
   * has not expired. Used so that one spool is finalised by one process only.
   */
  claimLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /**
   * Renews, in one write, every lease of `names` that `holder` still has: each lasts ttlMs
   * from now (the register's clock). Returns the names renewed; a name left out was lost
   * (taken by another holder after it expired, or no longer held at all). Names that are not
   * valid lease names are refused before anything is written.
   */
  renewLeases(names: readonly string[], holder: string, ttlMs: number): Promise<Set<string>>;
  /** Ends lease `name` if `holder` has it; otherwise changes nothing. */
  releaseLease(name: string, holder: string): Promise<void>;
  /**
   * Deletes every lease that ran out more than graceMs ago (the register's clock, as
   * claimLease reads it) and returns how many it deleted. A lease still running, or one that
   * lapsed within the grace (its holder may still renew it), is never touched: each expiry is
   * read again in the write that deletes it, so a lease claimed or renewed meanwhile stays.
   * Safe while other processes claim, renew and run this at the same time; each deleted
   * lease is counted by one of them only.
   */
  removeExpiredLeases(graceMs: number): Promise<number>;
  readonly schemaVersion: number;
  readonly audit: AuditLog;
  /** Users and API tokens of the access API. */
  readonly users: UserDirectory;
  close(): Promise<void>;
}

export const SCHEMA_VERSION = 3;
const MAX_PAGE = 10_000;
const MAX_ID_CHARS = 200;
/** Lease rows read per write transaction of removeExpiredLeases. */
const LEASE_SWEEP_PAGE = 1000;
const HIGH_TIME = Number.MAX_SAFE_INTEGER;
/** Sorts after any id or key id (they are ASCII). */
const HIGH_STRING = '\uffff';

type Migration = (ix: LmdbRecordingIndex) => void;

/**
 * migrations[v] brings a store at version v to v + 1; each runs inside one write transaction
 * with the version bump, so a crash mid-migration leaves the old version intact.
 * v0 is a store written before versioning (or by a version that kept no secondary keys):
 * the secondary indexes are rebuilt from the recordings.
 * v1 → v2 adds the SIPREC group index: the secondary keys are rebuilt again.
 * v2 → v3 adds the master-key index of wrapped data keys: rebuilt again.
 */
const MIGRATIONS: Migration[] = [(ix) => ix.rebuildSecondaryKeys(), (ix) => ix.rebuildSecondaryKeys(), (ix) => ix.rebuildSecondaryKeys()];

export interface OpenIndexOptions {
  now?: () => number;
  /** `[cluster] node_id` of this process: written into each audit entry it appends. */
  nodeId?: string;
}

export async function openIndex(storageDir: string, opts: OpenIndexOptions = {}): Promise<RecordingIndex> {
  const path = join(storageDir, 'index');
  mkdirSync(path, { recursive: true, mode: 0o750 });
  const env = open({ path, overlappingSync: false, maxDbs: 12 });
  const ix = new LmdbRecordingIndex(env, opts.now ?? Date.now, opts.nodeId);
  try {
    await ix.migrate();
  } catch (e) {
    await env.close();
    throw e;
  }
  return ix;
}

class LmdbRecordingIndex implements RecordingIndex {
  private readonly recordings: Database<RecordingEntry, string>;
  private readonly idx: Database<true, Key>;
  private readonly intentDb: Database<DestroyIntent, string>;
  private readonly meta: Database<unknown, string>;
  private readonly leases: Database<Lease, string>;
  private readonly auditLog: LmdbAuditLog;
  readonly users: UserDirectory;
  private closed = false;

  constructor(
    private readonly env: RootDatabase,
    private readonly now: () => number,
    nodeId?: string,
  ) {
    this.recordings = env.openDB<RecordingEntry, string>('recordings', {});
    this.idx = env.openDB<true, Key>('idx', {});
    this.intentDb = env.openDB<DestroyIntent, string>('intents', {});
    this.meta = env.openDB<unknown, string>('meta', {});
    this.leases = env.openDB<Lease, string>('leases', {});
    this.auditLog = new LmdbAuditLog(env, env.openDB('audit', {}) as unknown as Database<never, number>, this.meta, now, nodeId);
    this.users = new LmdbUserDirectory(env, env.openDB('users', {}), env.openDB('tokens', {}), this.auditLog, now);
  }

  get audit(): AuditLog {
    return this.auditLog;
  }

  get schemaVersion(): number {
    return (this.meta.get('schemaVersion') as number | undefined) ?? 0;
  }

  async migrate(): Promise<void> {
    const problem = await this.env.transaction(() => {
      let v = (this.meta.get('schemaVersion') as number | undefined) ?? 0;
      if (v > SCHEMA_VERSION) return `the index at schema version ${v} was written by a newer tallenne (this one knows ${SCHEMA_VERSION})`;
      // An empty store needs no migration, only its version.
      if (v === 0 && this.entryCount() === 0) v = SCHEMA_VERSION;
      for (; v < SCHEMA_VERSION; v++) MIGRATIONS[v]!(this);
      this.meta.put('schemaVersion', SCHEMA_VERSION);
      return null;
    });
    if (problem !== null) throw new TallenneError('TALLENNE_INDEX_VERSION', problem);
  }

  /** Drops and recomputes every secondary key (runs inside a write transaction). */
  rebuildSecondaryKeys(): void {
    const stale = [...this.idx.getKeys({})];
    for (const key of stale) this.idx.remove(key);
    for (const { value } of this.recordings.getRange({})) for (const k of keysOf(value)) this.idx.put(k as Key, true);
  }

  private writeKeys(before: RecordingEntry | undefined, after: RecordingEntry | undefined): void {
    const { remove, add } = keyDiff(before, after);
    for (const k of remove) this.idx.remove(k as Key);
    for (const k of add) this.idx.put(k as Key, true);
  }

  async put(entry: RecordingEntry, opts: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    checkId(entry.id);
    const clean = withoutUndefined(entry);
    await this.env.transaction(() => {
      const before = this.recordings.get(entry.id);
      this.recordings.put(entry.id, clean);
      this.writeKeys(before, clean);
      this.finishWrite(entry.id, opts);
    });
  }

  async get(id: string): Promise<RecordingEntry | undefined> {
    if (id.length === 0 || id.length > MAX_ID_CHARS) return undefined;
    return this.recordings.get(id);
  }

  async update(id: string, patch: RecordingPatch | ((e: RecordingEntry) => RecordingEntry), opts: WriteOptions = {}): Promise<RecordingEntry> {
    this.assertOpen();
    const result = await this.env.transaction((): RecordingEntry | { error: string } => {
      const before = this.recordings.get(id);
      if (!before) return { error: 'missing' };
      let after: RecordingEntry;
      try {
        after = typeof patch === 'function' ? patch(before) : { ...before, ...patch };
      } catch (e) {
        return { error: (e as Error).message };
      }
      if (after.id !== id) return { error: 'an update may not change the id' };
      after = withoutUndefined(after);
      this.recordings.put(id, after);
      this.writeKeys(before, after);
      this.finishWrite(id, opts);
      return after;
    });
    if ('error' in result) {
      if (result.error === 'missing') throw new TallenneError('TALLENNE_NOT_FOUND', `no recording ${id}`);
      throw new Error(result.error);
    }
    return result;
  }

  async remove(id: string, opts: WriteOptions = {}): Promise<boolean> {
    this.assertOpen();
    return this.env.transaction(() => {
      const before = this.recordings.get(id);
      if (before) {
        this.recordings.remove(id);
        this.writeKeys(before, undefined);
      }
      this.intentDb.remove(id);
      if (before || opts.audit) this.finishWrite(id, { ...opts, clearIntent: false });
      return before !== undefined;
    });
  }

  private finishWrite(id: string, opts: WriteOptions): void {
    if (opts.clearIntent) this.intentDb.remove(id);
    if (opts.audit) this.auditLog.appendInTransaction(opts.audit);
  }

  async setIntent(id: string, intent: DestroyIntent, when: IntentCondition = {}): Promise<boolean> {
    this.assertOpen();
    return this.env.transaction(() => {
      const e = this.recordings.get(id);
      if (!e) return false;
      if (when.notHeld && e.hold) return false;
      if (when.expiredBy !== undefined) {
        const exp = intent.kind === 'audio' ? effectiveAudioExpiry(e) : effectiveMetadataExpiry(e);
        if (exp === null || exp > when.expiredBy) return false;
      }
      this.intentDb.put(id, withoutUndefined(intent));
      if (e.dataKey) {
        const shredded = withoutUndefined({ ...e, dataKey: undefined });
        this.recordings.put(id, shredded);
        this.writeKeys(e, shredded);
      }
      return true;
    });
  }

  async dataKeyUsage(): Promise<Array<{ keyId: string; recordings: number }>> {
    const out: Array<{ keyId: string; recordings: number }> = [];
    let start: Key = [DATA_KEY_KIND];
    for (;;) {
      const next = [...this.idx.getKeys({ start, end: [DATA_KEY_KIND, HIGH_STRING], limit: 1 })][0] as IndexKey | undefined;
      if (next === undefined) return out;
      const keyId = next[1] as string;
      out.push({ keyId, recordings: this.idx.getKeysCount({ start: [DATA_KEY_KIND, keyId], end: [DATA_KEY_KIND, keyId, HIGH_STRING] }) });
      start = [DATA_KEY_KIND, keyId, HIGH_STRING];
    }
  }

  async wrappedUnder(keyId: string, limit: number): Promise<RecordingEntry[]> {
    const out: RecordingEntry[] = [];
    for (const key of this.idx.getKeys({ start: [DATA_KEY_KIND, keyId], end: [DATA_KEY_KIND, keyId, HIGH_STRING], limit })) {
      const e = this.recordings.get((key as IndexKey)[2] as string);
      if (e) out.push(e);
    }
    return out;
  }

  async rewrapDataKeys(items: ReadonlyArray<{ id: string; fromKeyId: string; wrapped: WrappedKey }>): Promise<number> {
    this.assertOpen();
    return this.env.transaction(() => {
      let n = 0;
      for (const { id, fromKeyId, wrapped } of items) {
        const before = this.recordings.get(id);
        if (!before?.dataKey || before.dataKey.keyId !== fromKeyId) continue;
        const after = { ...before, dataKey: wrapped };
        this.recordings.put(id, after);
        this.writeKeys(before, after);
        n++;
      }
      return n;
    });
  }

  async getMark<T>(name: string): Promise<T | undefined> {
    return this.meta.get(`mark:${name}`) as T | undefined;
  }

  async setMark(name: string, value: unknown, opts: { audit?: AuditInput } = {}): Promise<void> {
    this.assertOpen();
    await this.env.transaction(() => {
      if (value === undefined) this.meta.remove(`mark:${name}`);
      else this.meta.put(`mark:${name}`, value);
      if (opts.audit) this.auditLog.appendInTransaction(opts.audit);
    });
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    checkLease(name, holder, ttlMs);
    return this.env.transaction(() => {
      const now = this.now();
      const cur = this.leases.get(name);
      if (cur && cur.holder !== holder && cur.expiresAt > now) return false;
      this.leases.put(name, { holder, expiresAt: now + ttlMs });
      return true;
    });
  }

  async renewLeases(names: readonly string[], holder: string, ttlMs: number): Promise<Set<string>> {
    this.assertOpen();
    for (const name of names) checkLease(name, holder, ttlMs);
    if (names.length === 0) return new Set();
    return this.env.transaction(() => {
      const now = this.now();
      const renewed = new Set<string>();
      for (const name of names) {
        if (this.leases.get(name)?.holder !== holder) continue;
        this.leases.put(name, { holder, expiresAt: now + ttlMs });
        renewed.add(name);
      }
      return renewed;
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.assertOpen();
    await this.env.transaction(() => {
      if (this.leases.get(name)?.holder === holder) this.leases.remove(name);
    });
  }

  /**
   * A page of lease names at a time, each page read and pruned inside one write transaction
   * (LMDB's writers take turns across processes, so a page never sees a half-done claim), so
   * no transaction holds the writers up for long however many rows have piled up.
   */
  async removeExpiredLeases(graceMs: number): Promise<number> {
    this.assertOpen();
    checkLeaseGrace(graceMs);
    let removed = 0;
    let after: string | undefined;
    for (;;) {
      const from = after;
      const page = await this.env.transaction(() => {
        const cutoff = this.now() - graceMs;
        const doomed: string[] = [];
        let last: string | undefined;
        let scanned = 0;
        // One more than a page: the range starts at the last name of the page before.
        for (const { key, value } of this.leases.getRange({ ...(from === undefined ? {} : { start: from }), limit: LEASE_SWEEP_PAGE + 1 })) {
          if (key === from) continue;
          if (scanned === LEASE_SWEEP_PAGE) break;
          scanned++;
          last = key;
          if (value.expiresAt < cutoff) doomed.push(key);
        }
        for (const name of doomed) this.leases.remove(name);
        return { removed: doomed.length, last, full: scanned === LEASE_SWEEP_PAGE };
      });
      removed += page.removed;
      if (!page.full || page.last === undefined) return removed;
      after = page.last;
    }
  }

  async getIntent(id: string): Promise<DestroyIntent | undefined> {
    return this.intentDb.get(id);
  }

  async intents(limit: number): Promise<Array<{ id: string; intent: DestroyIntent }>> {
    const out: Array<{ id: string; intent: DestroyIntent }> = [];
    for (const { key, value } of this.intentDb.getRange({ limit })) out.push({ id: key, intent: value });
    return out;
  }

  async list(q: ListQuery, page: { cursor?: string; limit: number }): Promise<Page<RecordingEntry>> {
    const limit = Math.min(Math.max(1, Math.floor(page.limit)), MAX_PAGE);
    // The planner: the most selective lookup the query names; the rest are checked per entry.
    const field = (Object.keys(LOOKUP_KINDS) as LookupField[]).find((f) => q[f] !== undefined);
    const prefix: (string | number)[] = field ? [LOOKUP_KINDS[field], q[field]!] : [TIME_KIND];
    const from = q.from ?? 0;
    const to = q.to ?? HIGH_TIME;
    let start: IndexKey = [...prefix, to];
    let skip: IndexKey | null = null;
    if (page.cursor !== undefined) {
      const c = decodeCursor(page.cursor);
      if (c === null) throw new TallenneError('TALLENNE_NOT_FOUND', 'the cursor is not one this index gave out');
      if (c.startMs < to) {
        start = [...prefix, c.startMs, c.id];
        skip = start;
      }
    }
    const items: RecordingEntry[] = [];
    let visited = 0;
    let last: { t: number; id: string } | undefined;
    let more = false;
    for (const { key } of this.idx.getRange({ start: start as Key, end: [...prefix, from], reverse: true })) {
      const k = key as IndexKey;
      if (skip && k.length === skip.length && k[k.length - 2] === skip[skip.length - 2] && k[k.length - 1] === skip[skip.length - 1]) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      visited++;
      const t = k[k.length - 2] as number;
      const id = k[k.length - 1] as string;
      last = { t, id };
      const e = this.recordings.get(id);
      if (e && matches(e, q)) items.push(e);
    }
    const result: Page<RecordingEntry> = { items, visited };
    if (more && last) result.nextCursor = encodeCursor(last.t, last.id);
    return result;
  }

  async expiredAudio(now: number, limit: number): Promise<RecordingEntry[]> {
    return this.expired(AUDIO_EXPIRY_KIND, now, limit);
  }

  async expiredMetadata(now: number, limit: number): Promise<RecordingEntry[]> {
    return this.expired(METADATA_EXPIRY_KIND, now, limit);
  }

  private expired(kind: string, now: number, limit: number): RecordingEntry[] {
    const out: RecordingEntry[] = [];
    // End is exclusive: every expiry at or before `now`.
    for (const { key } of this.idx.getRange({ start: [kind], end: [kind, Math.floor(now) + 1], limit })) {
      const e = this.recordings.get((key as IndexKey)[2] as string);
      if (e) out.push(e);
    }
    return out;
  }

  async count(): Promise<number> {
    // lmdb-js keeps one read snapshot until its next timer tick; a count asked for right
    // after a commit (of this process or another one) must see it.
    this.env.resetReadTxn();
    return this.entryCount();
  }

  private entryCount(): number {
    // LMDB keeps the entry count of each database: O(1), no scan.
    return (this.recordings.getStats() as { entryCount: number }).entryCount;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.env.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the recording index is closed');
  }
}

function matches(e: RecordingEntry, q: ListQuery): boolean {
  if (q.agentId !== undefined && e.agentId !== q.agentId) return false;
  if (q.team !== undefined && e.team !== q.team) return false;
  if (q.serviceNumber !== undefined && e.serviceNumber !== q.serviceNumber) return false;
  if (q.status !== undefined && e.status !== q.status) return false;
  if (q.numberHash !== undefined && e.customerNumberHash !== q.numberHash) return false;
  if (q.groupId !== undefined && e.groupId !== q.groupId) return false;
  const t = startMsOf(e);
  if (q.from !== undefined && t < q.from) return false;
  if (q.to !== undefined && t >= q.to) return false;
  return true;
}

interface Lease {
  readonly holder: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

export function checkLease(name: string, holder: string, ttlMs: number): void {
  if (name.length === 0 || name.length > MAX_ID_CHARS || holder.length === 0 || holder.length > MAX_ID_CHARS) throw new Error('a lease name and holder must be 1-200 characters');
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new Error('a lease lasts a positive whole number of milliseconds');
}

/** A sweep's grace: how long past its expiry a lease row is kept (whole ms, 0 or more). */
export function checkLeaseGrace(graceMs: number): void {
  if (!Number.isSafeInteger(graceMs) || graceMs < 0) throw new Error('a lease sweep\'s grace is a whole number of milliseconds, 0 or more');
}

export function checkId(id: string): void {
  if (id.length === 0 || id.length > MAX_ID_CHARS || id.includes('\u0000')) throw new Error('a recording id must be 1-200 characters without NUL');
}

/** Drops top-level undefined fields so a patch can remove one and nothing stores "undefined". */
export function withoutUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

export { startMsOf };
