/**
 * The PostgreSQL register's count of recordings (migration 3): exact through every way rows
 * come and go (puts that insert or replace, batches, removals, a DELETE of many, TRUNCATE,
 * concurrent writers on two nodes), and counted at migration over a table that has rows.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../../../support/postgres.js';
import { MIGRATIONS } from '../../../../src/index/postgres/migrations/index.js';
import { migratePostgres, openPostgresIndex } from '../../../../src/index/postgres/open.js';
import { writeRecordings } from '../../../../src/index/postgres/recordings.js';
import { makeEntry } from '../entry.js';

const T0 = Date.UTC(2026, 0, 1);
let server: PostgresHandle;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

async function exact(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query('SELECT count(*) AS n FROM recordings')).rows[0].n);
  } finally {
    await c.end();
  }
}

describe.skipIf(!postgresInstalled())('PostgreSQL register: the count of recordings', () => {
  it('counts the rows a register had before migration 3', async () => {
    const url = await server.createDatabase();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const m of MIGRATIONS.slice(0, 2)) {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      await writeRecordings(c as unknown as pg.PoolClient, [makeEntry('a', T0), makeEntry('b', T0 + 1), makeEntry('c', T0 + 2)]);
    } finally {
      await c.end();
    }
    await migratePostgres(url);
    const ix = await openPostgresIndex({ url, poolSize: 2, node: 'n1' });
    try {
      expect(await ix.count()).toBe(3);
      await ix.put(makeEntry('d', T0 + 3));
      expect(await ix.count()).toBe(4);
    } finally {
      await ix.close();
    }
  });

  it('stays exact through replacing puts, batches, removals, bulk deletes, TRUNCATE and two nodes writing at once', async () => {
    const url = await server.createDatabase();
    await migratePostgres(url);
    const a = await openPostgresIndex({ url, poolSize: 8, node: 'n1' });
    const b = await openPostgresIndex({ url, poolSize: 8, node: 'n2' });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await a.put(makeEntry('p1', T0));
      await a.put(makeEntry('p1', T0, { agentId: 'again' })); // replaces: not a second recording
      expect(await a.count()).toBe(1);
      // A batch of new and existing rows: only the new ones count.
      await writeRecordings(c as unknown as pg.PoolClient, [makeEntry('p1', T0, { team: 't' }), makeEntry('q1', T0 + 1), makeEntry('q2', T0 + 2)]);
      expect(await a.count()).toBe(3);

      const ids = (node: string): string[] => Array.from({ length: 40 }, (_, i) => `${node}-${String(i).padStart(2, '0')}`);
      await Promise.all([...ids('a').map((id, i) => a.put(makeEntry(id, T0 + i))), ...ids('b').map((id, i) => b.put(makeEntry(id, T0 + i)))]);
      await Promise.all([...ids('a').slice(0, 10).map((id) => b.remove(id)), ...ids('b').slice(0, 10).map((id) => a.remove(id))]);
      expect(await a.remove('a-00')).toBe(false); // already gone: nothing to take off
      expect(await b.count()).toBe(3 + 80 - 20);
      expect(await a.count()).toBe(await exact(url));

      await c.query("DELETE FROM recordings WHERE id LIKE 'b-%'");
      expect(await a.count()).toBe(3 + 30);
      expect(await a.count()).toBe(await exact(url));
      await c.query('TRUNCATE recordings');
      expect(await a.count()).toBe(0);
      await a.put(makeEntry('after', T0));
      expect(await b.count()).toBe(1);
    } finally {
      await c.end();
      await a.close();
      await b.close();
    }
  });
});
