/**
 * `tallenne index copy`: moves a site's register (recordings, destruction intents, users and
 * tokens, the key-rotation mark, and the audit chain entry for entry, hashes unchanged) from
 * an LMDB index into an empty PostgreSQL register. Recordings go in batches, each committed
 * with a checkpoint in the target (the source's cursor), so a copy killed anywhere resumes
 * where its last batch ended; rows are upserted, so a batch done twice does no harm. The
 * audit chain resumes after the target's last entry. At the end the counts must match.
 * Meant for a site whose daemon is stopped: recordings added to the source meanwhile are
 * not followed.
 */
import { TallenneError } from '../../errors.js';
import { ROTATION_MARK } from '../../crypto/rotation.js';
import type { RecordingIndex } from '../index.js';
import { LOCKS, transaction, withAdvisoryLock, type Db, type Tx } from './pool.js';
import { writeRecordings } from './recordings.js';

export const COPY_MARK = 'indexCopy';

interface Checkpoint {
  source: string;
  /** The source cursor after the last committed batch; absent before the first. */
  cursor?: string;
  copied: number;
  recordingsDone: boolean;
  done: boolean;
}

export interface CopyReport {
  source: string;
  resumed: boolean;
  recordings: { source: number; target: number };
  auditEntries: { source: number; target: number };
  users: { source: number; target: number };
  intents: number;
}

export interface CopyOptions {
  /** Names the source in the checkpoint (a resume must name the same one). */
  sourceName: string;
  batch?: number;
  /** After each committed batch of recordings, with the running total. */
  onBatch?: (copied: number) => void;
}

async function readCheckpoint(db: Db | Tx): Promise<Checkpoint | undefined> {
  return (await db.query<{ value: Checkpoint }>('SELECT value FROM marks WHERE name = $1', [COPY_MARK])).rows[0]?.value;
}

async function writeCheckpoint(tx: Tx, c: Checkpoint): Promise<void> {
  await tx.query('INSERT INTO marks (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', [COPY_MARK, JSON.stringify(c)]);
}

async function scalar(db: Db, sql: string): Promise<number> {
  return Number((await db.query<{ n: number }>(sql)).rows[0]!.n);
}

export async function copyIndex(source: RecordingIndex, db: Db, opts: CopyOptions): Promise<CopyReport> {
  const r = await withAdvisoryLock(db, LOCKS.copy, false, () => copyLocked(source, db, opts));
  if (!r.locked) throw new TallenneError('TALLENNE_INDEX_COPY', 'another `index copy` into this register is running');
  return r.value;
}

async function copyLocked(source: RecordingIndex, db: Db, opts: CopyOptions): Promise<CopyReport> {
  const batch = opts.batch ?? 500;
  let cp = await readCheckpoint(db);
  const resumed = cp !== undefined;
  if (cp === undefined) {
    const busy = await scalar(db, 'SELECT (SELECT count(*) FROM recordings) + (SELECT count(*) FROM audit_log) + (SELECT count(*) FROM users) AS n');
    if (busy > 0) throw new TallenneError('TALLENNE_INDEX_COPY', 'the target register is not empty and holds no copy checkpoint: copy only into a freshly migrated register');
    cp = { source: opts.sourceName, copied: 0, recordingsDone: false, done: false };
  } else if (cp.source !== opts.sourceName) {
    throw new TallenneError('TALLENNE_INDEX_COPY', `the target holds a copy checkpoint from ${cp.source}, not ${opts.sourceName}`);
  }

  while (!cp.recordingsDone) {
    const page = await source.list({}, cp.cursor === undefined ? { limit: batch } : { cursor: cp.cursor, limit: batch });
    const next: Checkpoint = { ...cp, copied: cp.copied + page.items.length, recordingsDone: page.nextCursor === undefined };
    if (page.nextCursor !== undefined) next.cursor = page.nextCursor;
    await transaction(db, async (tx) => {
      await writeRecordings(tx, page.items);
      await writeCheckpoint(tx, next);
    });
    cp = next;
    opts.onBatch?.(cp.copied);
  }

  const intents = await source.intents(1_000_000);
  const users = await source.users.listUsers();
  const rotation = await source.getMark<unknown>(ROTATION_MARK);
  await transaction(db, async (tx) => {
    for (const { id, intent } of intents) await tx.query('INSERT INTO intents (id, intent) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [id, JSON.stringify(intent)]);
    for (const u of users) {
      await tx.query('INSERT INTO users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record', [u.name, JSON.stringify(u)]);
      for (const t of await source.users.tokensOf(u.name)) {
        await tx.query('INSERT INTO tokens (id, user_name, record) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record', [t.id, t.user, JSON.stringify(t)]);
      }
    }
    if (rotation !== undefined) await tx.query('INSERT INTO marks (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value', [ROTATION_MARK, JSON.stringify(rotation)]);
  });

  // The chain, entry for entry: each batch commits with the head moved to its last entry.
  for (;;) {
    const after = await scalar(db, 'SELECT seq AS n FROM audit_head WHERE one');
    const entries = await source.audit.list({ after, limit: batch });
    if (entries.length === 0) break;
    await transaction(db, async (tx) => {
      for (const e of entries) await tx.query('INSERT INTO audit_log (seq, entry) VALUES ($1, $2)', [e.seq, JSON.stringify(e)]);
      const last = entries[entries.length - 1]!;
      await tx.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE one', [last.seq, last.hash]);
    });
  }

  const sourceAudit = await source.audit.verify();
  const report: CopyReport = {
    source: opts.sourceName,
    resumed,
    recordings: { source: await source.count(), target: await scalar(db, 'SELECT count(*) AS n FROM recordings') },
    auditEntries: { source: sourceAudit.ok ? sourceAudit.entries : -1, target: await scalar(db, 'SELECT count(*) AS n FROM audit_log') },
    users: { source: users.length, target: await scalar(db, 'SELECT count(*) AS n FROM users') },
    intents: intents.length,
  };
  if (!sourceAudit.ok) throw new TallenneError('TALLENNE_INDEX_COPY', `the source's audit chain does not verify (entry ${sourceAudit.at}: ${sourceAudit.problem}); nothing more was checked`);
  for (const k of ['recordings', 'auditEntries', 'users'] as const) {
    if (report[k].source !== report[k].target) throw new TallenneError('TALLENNE_INDEX_COPY', `count check failed: ${k} ${report[k].source} in the source, ${report[k].target} in the target`);
  }
  await transaction(db, (tx) => writeCheckpoint(tx, { ...cp, done: true }));
  return report;
}
