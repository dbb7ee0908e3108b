/**
 * The recordings index in PostgreSQL, shared by every recorder of a site: the same queries,
 * newest-first cursor paging, destruction intents and same-transaction audit entries as the
 * LMDB index (src/index/index.ts), with row locks where LMDB has its single writer. A
 * recording row is locked (SELECT ... FOR UPDATE) before it is read for a change, so two
 * nodes changing one recording take turns and each sees the other's result.
 */
import type { RecordingEntry } from '../../types.js';
import type { WrappedKey } from '../../crypto/keyring.js';
import { TallenneError } from '../../errors.js';
import type { AuditInput } from '../audit.js';
import { checkId, checkLease, checkLeaseGrace, withoutUndefined, type DestroyIntent, type IntentCondition, type ListQuery, type Page, type RecordingIndex, type RecordingPatch, type WriteOptions } from '../index.js';
import { decodeCursor, effectiveAudioExpiry, effectiveMetadataExpiry, encodeCursor, LOOKUP_KINDS, type LookupField } from '../keys.js';
import { PostgresAuditLog } from './audit.js';
import { PostgresUserDirectory } from './users.js';
import { COLUMN_TYPES, columnValues, INDEXED_COLUMNS, LOOKUP_COLUMNS } from './columns.js';
import { LATEST_VERSION } from './migrations/index.js';
import { LOCKS, transaction, withAdvisoryLock, type Db, type Tx } from './pool.js';

const MAX_PAGE = 10_000;
/** The database server's clock in epoch ms: leases expire on it, whatever the nodes' clocks say. */
const SERVER_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
const MAX_ID_CHARS = 200;
/** Lease rows deleted per statement of removeExpiredLeases. */
const LEASE_SWEEP_BATCH = 5000;

/**
 * One batch of the lease sweep, in name order after $2: rows that ran out more than $1 ms
 * ago by the server's clock (read once per statement), locked before they are deleted.
 * READ COMMITTED reads a row another node changed meanwhile again, so a lease claimed or
 * renewed while the batch waits for it no longer matches; SKIP LOCKED leaves rows another
 * writer (or another node's sweep) holds to that writer. The count and the last name go back.
 */
const SWEEP_LEASES = `WITH doomed AS (
    SELECT name FROM leases
    WHERE name > $2 AND expires_ms < (SELECT ${SERVER_MS} - $1::bigint)
    ORDER BY name LIMIT $3
    FOR UPDATE SKIP LOCKED
  ), gone AS (
    DELETE FROM leases l USING doomed d WHERE l.name = d.name RETURNING l.name
  )
  SELECT count(*)::int AS n, max(name) AS last FROM gone`;

/**
 * Rows in as one JSON array (a row per recording: its id, looked-up columns and entry),
 * unpacked by the server: one statement and one parameter whatever the number of rows.
 */
const UPSERT = `INSERT INTO recordings (id, ${INDEXED_COLUMNS.join(', ')}, entry)
  SELECT id, ${INDEXED_COLUMNS.join(', ')}, entry FROM json_to_recordset($1::json)
    AS r(id text, ${INDEXED_COLUMNS.map((c) => `${c} ${COLUMN_TYPES[c]}`).join(', ')}, entry json)
  ON CONFLICT (id) DO UPDATE SET ${[...INDEXED_COLUMNS, 'entry'].map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;

export class PostgresRecordingIndex implements RecordingIndex {
  readonly audit: PostgresAuditLog;
  readonly users: PostgresUserDirectory;
  readonly schemaVersion = LATEST_VERSION;
  private closed = false;

  constructor(
    private readonly db: Db,
    node: string,
    now: () => number,
  ) {
    this.audit = new PostgresAuditLog(db, node, now);
    this.users = new PostgresUserDirectory(db, this.audit, now);
  }

  async put(entry: RecordingEntry, opts: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    checkId(entry.id);
    const clean = withoutUndefined(entry);
    await transaction(this.db, async (tx) => {
      await this.write(tx, clean);
      await this.finishWrite(tx, entry.id, opts);
    });
  }

  async get(id: string): Promise<RecordingEntry | undefined> {
    if (id.length === 0 || id.length > MAX_ID_CHARS) return undefined;
    const r = await this.db.query<{ entry: RecordingEntry }>('SELECT entry FROM recordings WHERE id = $1', [id]);
    return r.rows[0]?.entry;
  }

  async update(id: string, patch: RecordingPatch | ((e: RecordingEntry) => RecordingEntry), opts: WriteOptions = {}): Promise<RecordingEntry> {
    this.assertOpen();
    return transaction(this.db, async (tx) => {
      const before = await this.lock(tx, id);
      if (!before) throw new TallenneError('TALLENNE_NOT_FOUND', `no recording ${id}`);
      let after = typeof patch === 'function' ? patch(before) : { ...before, ...patch };
      if (after.id !== id) throw new Error('an update may not change the id');
      after = withoutUndefined(after);
      await this.write(tx, after);
      await this.finishWrite(tx, id, opts);
      return after;
    });
  }

  async remove(id: string, opts: WriteOptions = {}): Promise<boolean> {
    this.assertOpen();
    return transaction(this.db, async (tx) => {
      const gone = (await tx.query('DELETE FROM recordings WHERE id = $1', [id])).rowCount ?? 0;
      await tx.query('DELETE FROM intents WHERE id = $1', [id]);
      if (opts.audit) await this.audit.appendIn(tx, opts.audit);
      return gone > 0;
    });
  }

  /**
   * As in LMDB, plus: an intent already recorded (by another node's purge or erasure) is
   * left alone and false returned, so one destruction is carried out, and audited, once.
   */
  async setIntent(id: string, intent: DestroyIntent, when: IntentCondition = {}): Promise<boolean> {
    this.assertOpen();
    return transaction(this.db, async (tx) => {
      const e = await this.lock(tx, id);
      if (!e) return false;
      if (when.notHeld && e.hold) return false;
      if (when.expiredBy !== undefined) {
        const exp = intent.kind === 'audio' ? effectiveAudioExpiry(e) : effectiveMetadataExpiry(e);
        if (exp === null || exp > when.expiredBy) return false;
      }
      const r = await tx.query('INSERT INTO intents (id, intent) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, JSON.stringify(withoutUndefined(intent))]);
      if ((r.rowCount ?? 0) === 0) return false;
      if (e.dataKey) await this.write(tx, withoutUndefined({ ...e, dataKey: undefined }));
      return true;
    });
  }

  async getIntent(id: string): Promise<DestroyIntent | undefined> {
    const r = await this.db.query<{ intent: DestroyIntent }>('SELECT intent FROM intents WHERE id = $1', [id]);
    return r.rows[0]?.intent;
  }

  async intents(limit: number): Promise<Array<{ id: string; intent: DestroyIntent }>> {
    const r = await this.db.query<{ id: string; intent: DestroyIntent }>('SELECT id, intent FROM intents ORDER BY id LIMIT $1', [Math.max(0, Math.floor(limit))]);
    return r.rows;
  }

  async list(q: ListQuery, page: { cursor?: string; limit: number }): Promise<Page<RecordingEntry>> {
    const limit = Math.min(Math.max(1, Math.floor(page.limit)), MAX_PAGE);
    const where: string[] = [];
    const params: Array<string | number> = [];
    const arg = (v: string | number): string => {
      params.push(v);
      return `$${params.length}`;
    };
    for (const f of Object.keys(LOOKUP_KINDS) as LookupField[]) {
      const v = q[f];
      if (v !== undefined) where.push(`${LOOKUP_COLUMNS[f]} = ${arg(v)}`);
    }
    if (q.from !== undefined) where.push(`start_ms >= ${arg(q.from)}`);
    if (q.to !== undefined) where.push(`start_ms < ${arg(q.to)}`);
    if (page.cursor !== undefined) {
      const c = decodeCursor(page.cursor);
      if (c === null) throw new TallenneError('TALLENNE_NOT_FOUND', 'the cursor is not one this index gave out');
      where.push(`(start_ms, id) < (${arg(c.startMs)}, ${arg(c.id)})`);
    }
    const sql = `SELECT id, start_ms, entry FROM recordings ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY start_ms DESC, id DESC LIMIT ${arg(limit + 1)}`;
    const rows = (await this.db.query<{ id: string; start_ms: number; entry: RecordingEntry }>(sql, params)).rows;
    const more = rows.length > limit;
    const items = rows.slice(0, limit);
    const result: Page<RecordingEntry> = { items: items.map((r) => r.entry), visited: items.length };
    const last = items[items.length - 1];
    if (more && last) result.nextCursor = encodeCursor(last.start_ms, last.id);
    return result;
  }

  expiredAudio(now: number, limit: number): Promise<RecordingEntry[]> {
    return this.expired('audio_expiry', now, limit);
  }

  expiredMetadata(now: number, limit: number): Promise<RecordingEntry[]> {
    return this.expired('metadata_expiry', now, limit);
  }

  private async expired(column: 'audio_expiry' | 'metadata_expiry', now: number, limit: number): Promise<RecordingEntry[]> {
    const r = await this.db.query<{ entry: RecordingEntry }>(
      `SELECT entry FROM recordings WHERE ${column} <= $1 ORDER BY ${column}, id LIMIT $2`,
      [Math.floor(now), Math.max(0, Math.floor(limit))],
    );
    return r.rows.map((x) => x.entry);
  }

  /** Exact, and cheap at any size: the slots that migration 3's triggers keep (no count(*) over the table). */
  async count(): Promise<number> {
    return (await this.db.query<{ n: number }>('SELECT coalesce(sum(n), 0)::bigint AS n FROM recording_count')).rows[0]!.n;
  }

  async dataKeyUsage(): Promise<Array<{ keyId: string; recordings: number }>> {
    const r = await this.db.query<{ keyId: string; recordings: number }>(
      'SELECT data_key_id AS "keyId", count(*)::bigint AS recordings FROM recordings WHERE data_key_id IS NOT NULL GROUP BY data_key_id ORDER BY data_key_id',
    );
    return r.rows;
  }

  async wrappedUnder(keyId: string, limit: number): Promise<RecordingEntry[]> {
    const r = await this.db.query<{ entry: RecordingEntry }>('SELECT entry FROM recordings WHERE data_key_id = $1 ORDER BY id LIMIT $2', [keyId, Math.max(0, Math.floor(limit))]);
    return r.rows.map((x) => x.entry);
  }

  async rewrapDataKeys(items: ReadonlyArray<{ id: string; fromKeyId: string; wrapped: WrappedKey }>): Promise<number> {
    this.assertOpen();
    return transaction(this.db, async (tx) => {
      let n = 0;
      for (const { id, fromKeyId, wrapped } of items) {
        const before = await this.lock(tx, id);
        if (!before?.dataKey || before.dataKey.keyId !== fromKeyId) continue;
        await this.write(tx, { ...before, dataKey: wrapped });
        n++;
      }
      return n;
    });
  }

  async getMark<T>(name: string): Promise<T | undefined> {
    const r = await this.db.query<{ value: T }>('SELECT value FROM marks WHERE name = $1', [name]);
    return r.rows[0]?.value;
  }

  async setMark(name: string, value: unknown, opts: { audit?: AuditInput } = {}): Promise<void> {
    this.assertOpen();
    await transaction(this.db, async (tx) => {
      if (value === undefined) await tx.query('DELETE FROM marks WHERE name = $1', [name]);
      else await tx.query('INSERT INTO marks (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', [name, JSON.stringify(value)]);
      if (opts.audit) await this.audit.appendIn(tx, opts.audit);
    });
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    checkLease(name, holder, ttlMs);
    // One statement: the row lock of the upsert makes concurrent claims take turns.
    const r = await this.db.query(
      `INSERT INTO leases AS l (name, holder, expires_ms) VALUES ($1, $2, ${SERVER_MS} + $3)
       ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms
       WHERE l.holder = EXCLUDED.holder OR l.expires_ms <= ${SERVER_MS}`,
      [name, holder, ttlMs],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async renewLeases(names: readonly string[], holder: string, ttlMs: number): Promise<Set<string>> {
    this.assertOpen();
    for (const name of names) checkLease(name, holder, ttlMs);
    if (names.length === 0) return new Set();
    // One statement for all of them: a row another holder has taken is not matched.
    const r = await this.db.query<{ name: string }>(
      `UPDATE leases SET expires_ms = ${SERVER_MS} + $3 WHERE holder = $1 AND name = ANY($2::text[]) RETURNING name`,
      [holder, names, ttlMs],
    );
    return new Set(r.rows.map((x) => x.name));
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    this.assertOpen();
    await this.db.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]);
  }

  /**
   * In batches walked along the primary key, each its own short statement: the table may
   * hold every INVITE of a busy site since the last sweep, and no statement locks them all.
   */
  async removeExpiredLeases(graceMs: number): Promise<number> {
    this.assertOpen();
    checkLeaseGrace(graceMs);
    let removed = 0;
    let after = '';
    for (;;) {
      const r = (await this.db.query<{ n: number; last: string | null }>(SWEEP_LEASES, [graceMs, after, LEASE_SWEEP_BATCH])).rows[0]!;
      removed += r.n;
      if (r.n < LEASE_SWEEP_BATCH || r.last === null) return removed;
      after = r.last;
    }
  }

  /**
   * Runs a retention purge pass while this node holds the register's purge lock; another
   * node's pass in progress makes it return `{ locked: false }` at once. A node that dies
   * mid-pass drops its connection and with it the lock; its intents are there for the next.
   */
  purgeAlone<T>(fn: () => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
    return withAdvisoryLock(this.db, LOCKS.purge, false, fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.end();
  }

  private async lock(tx: Tx, id: string): Promise<RecordingEntry | undefined> {
    return (await tx.query<{ entry: RecordingEntry }>('SELECT entry FROM recordings WHERE id = $1 FOR UPDATE', [id])).rows[0]?.entry;
  }

  private write(tx: Tx, e: RecordingEntry): Promise<void> {
    return writeRecording(tx, e);
  }

  private async finishWrite(tx: Tx, id: string, opts: WriteOptions): Promise<void> {
    if (opts.clearIntent) await tx.query('DELETE FROM intents WHERE id = $1', [id]);
    if (opts.audit) await this.audit.appendIn(tx, opts.audit);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the recording index is closed');
  }
}

/** Inserts or replaces a recording's row, its looked-up columns with it. */
export async function writeRecording(tx: Tx, e: RecordingEntry): Promise<void> {
  await writeRecordings(tx, [e]);
}

/**
 * Inserts or replaces many recordings' rows in one statement (an index copy's batch, a
 * bench's fill). The ids of one call must differ: a statement may not change a row twice.
 */
export async function writeRecordings(tx: Tx, entries: readonly RecordingEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const rows = entries.map((e) => {
    const values = columnValues(e);
    const row: Record<string, unknown> = { id: e.id, entry: e };
    INDEXED_COLUMNS.forEach((c, i) => (row[c] = values[i]));
    return row;
  });
  await tx.query(UPSERT, [JSON.stringify(rows)]);
}
