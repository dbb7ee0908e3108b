/**
 * Opens the PostgreSQL register: the pool, a first round trip (a refusal is reported without
 * the URL's password), and the schema check: a register not migrated to this version is
 * refused with the command that fixes it, never migrated behind the operator's back.
 */
import { assertMigrated, migrate, type MigrateReport } from './migrate.js';
import { openPool, ping, type Db } from './pool.js';
import { PostgresRecordingIndex } from './recordings.js';

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /** [cluster] node_id: written into each audit entry. */
  node: string;
  now?: () => number;
  /** Told when the server drops an idle connection (message without the password). */
  onError?: (message: string) => void;
}

export async function openPostgresIndex(o: PostgresOptions): Promise<PostgresRecordingIndex> {
  const db = await connect(o.url, o.poolSize, o.onError);
  try {
    await assertMigrated(db);
  } catch (e) {
    await db.end();
    throw e;
  }
  return new PostgresRecordingIndex(db, o.node, o.now ?? Date.now);
}

/** `tallenne index migrate`: brings the register to this version's schema. */
export async function migratePostgres(url: string): Promise<MigrateReport> {
  const db = await connect(url, 2);
  try {
    return await migrate(db);
  } finally {
    await db.end();
  }
}

/** Runs `fn` on a small pool to a register at this version's schema (for `index copy`). */
export async function withMigratedDb<T>(url: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connect(url, 2);
  try {
    await assertMigrated(db);
    return await fn(db);
  } finally {
    await db.end();
  }
}

async function connect(url: string, size: number, onError?: (message: string) => void): Promise<Db> {
  const db = openPool(url, size, onError);
  try {
    await ping(db, url);
  } catch (e) {
    await db.end();
    throw e;
  }
  return db;
}
