/**
 * Brings a register database to the latest schema (`tallenne index migrate`). The run holds
 * an advisory lock, so two nodes migrating at once take turns: the second finds the work
 * done. Each migration commits with its row in schema_migrations, so a run cut short leaves
 * whole versions only, and running again is harmless.
 */
import { TallenneError } from '../../errors.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations/index.js';
import { LOCKS, transaction, withAdvisoryLock, type Db } from './pool.js';

export interface MigrateReport {
  from: number;
  to: number;
  applied: Array<{ version: number; name: string }>;
}

const TRACKING = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

/** The highest applied version; 0 for an empty database. */
export async function schemaVersion(db: Db): Promise<number> {
  const t = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (t.rows[0]?.t == null) return 0;
  const r = await db.query<{ v: number }>('SELECT coalesce(max(version), 0) AS v FROM schema_migrations');
  return r.rows[0]!.v;
}

function newerThanUs(v: number): TallenneError {
  return new TallenneError('TALLENNE_INDEX_VERSION', `the register is at schema version ${v}, written by a newer tallenne (this one knows ${LATEST_VERSION})`);
}

export async function migrate(db: Db): Promise<MigrateReport> {
  const r = await withAdvisoryLock(db, LOCKS.migrate, true, async () => {
    await db.query(TRACKING);
    const from = await schemaVersion(db);
    if (from > LATEST_VERSION) throw newerThanUs(from);
    const applied: MigrateReport['applied'] = [];
    for (const m of MIGRATIONS.slice(from)) {
      await transaction(db, async (tx) => {
        await tx.query(m.sql);
        await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      });
      applied.push({ version: m.version, name: m.name });
    }
    return { from, to: LATEST_VERSION, applied };
  });
  if (!r.locked) throw new Error('unreachable: a waiting lock is always taken');
  return r.value;
}

/** Refuses a register that is not at this tallenne's schema version. */
export async function assertMigrated(db: Db): Promise<void> {
  const v = await schemaVersion(db);
  if (v > LATEST_VERSION) throw newerThanUs(v);
  if (v < LATEST_VERSION) {
    throw new TallenneError('TALLENNE_INDEX_SCHEMA', `the register is at schema version ${v}, this tallenne needs ${LATEST_VERSION}: run \`tallenne index migrate\``);
  }
}
