/**
 * Connections to the register's PostgreSQL: the pool, transactions, and session advisory
 * locks (held on one connection, released when it ends: a node that dies lets go of them).
 * The only module that imports the driver. Errors are rethrown without the URL's password.
 */
import pg from 'pg';
import { TallenneError } from '../../errors.js';
import { redactUrl, scrubPassword } from './url.js';

export type Db = pg.Pool;
export type Tx = pg.PoolClient;

/** Advisory lock keys of the register (one number each, shared by every node). */
export const LOCKS = {
  /** Held around a migration run. */
  migrate: 0x7a11e001,
  /** Held by the node running a retention purge pass. */
  purge: 0x7a11e002,
  /** Held by an `index copy` into this database. */
  copy: 0x7a11e003,
} as const;

/** bigint columns (times in ms, sequence numbers) come back as numbers: all stay below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export function openPool(url: string, size: number, onError?: (message: string) => void): Db {
  const pool = new pg.Pool({ connectionString: url, max: size, types, application_name: 'tallenne', connectionTimeoutMillis: 60_000 });
  // An idle connection the server dropped: the pool replaces it; without a listener it would end the process.
  pool.on('error', (e) => onError?.(scrubPassword(e.message, url)));
  return pool;
}

/** Checks the server answers; a refusal becomes TALLENNE_INDEX_UNREACHABLE, without the password. */
export async function ping(db: Db, url: string): Promise<void> {
  try {
    await db.query('SELECT 1');
  } catch (e) {
    throw new TallenneError('TALLENNE_INDEX_UNREACHABLE', `the register at ${redactUrl(url)}: ${scrubPassword((e as Error).message, url)}`);
  }
}

/** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
export async function transaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const tx = await db.connect();
  try {
    await tx.query('BEGIN');
    const out = await fn(tx);
    await tx.query('COMMIT');
    return out;
  } catch (e) {
    await tx.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    tx.release();
  }
}

/**
 * Runs `fn` while holding advisory lock `key` on a connection of its own. `wait: false`
 * gives up at once when another node holds it (resolves `{ locked: false }`).
 */
export async function withAdvisoryLock<T>(db: Db, key: number, wait: boolean, fn: () => Promise<T>): Promise<{ locked: true; value: T } | { locked: false }> {
  const c = await db.connect();
  let held = false;
  try {
    if (wait) {
      await c.query('SELECT pg_advisory_lock($1)', [key]);
      held = true;
    } else {
      const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
      held = r.rows[0]!.ok;
      if (!held) return { locked: false };
    }
    return { locked: true, value: await fn() };
  } finally {
    if (held) await c.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
    c.release();
  }
}
