import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../../../support/postgres.js';
import { tempDir, trackChild } from '../../../support/cleanup.js';
import { BIN } from '../../../support/daemon.js';
import { LATEST_VERSION, MIGRATIONS } from '../../../../src/index/postgres/migrations/index.js';
import { migratePostgres, openPostgresIndex } from '../../../../src/index/postgres/open.js';

let server: PostgresHandle;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

function configWith(dir: string, urlFile: string): string {
  const file = join(dir, 'tallenne.toml');
  writeFileSync(file, `[storage]\ndir = "${dir}/data"\n[privacy]\nhash_key_file = "${dir}/hash.key"\n[encryption]\nenabled = false\nmaster_key_file = "${dir}/master.key"\n[index]\nbackend = "postgres"\nurl_file = "${urlFile}"\n`);
  return file;
}

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = trackChild(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => p.once('exit', (code) => resolve({ code, out })));
}

describe.skipIf(!postgresInstalled())('PostgreSQL register migrations', () => {
  it('refuses a register not migrated, then migrates it once and again harmlessly', async () => {
    const url = await server.createDatabase();
    await expect(openPostgresIndex({ url, poolSize: 2, node: 'n1' })).rejects.toMatchObject({ code: 'TALLENNE_INDEX_SCHEMA' });
    const first = await migratePostgres(url);
    expect(first).toEqual({ from: 0, to: LATEST_VERSION, applied: MIGRATIONS.map((m) => ({ version: m.version, name: m.name })) });
    const again = await migratePostgres(url);
    expect(again).toEqual({ from: LATEST_VERSION, to: LATEST_VERSION, applied: [] });
    const ix = await openPostgresIndex({ url, poolSize: 2, node: 'n1' });
    expect(await ix.count()).toBe(0);
    await ix.close();
  });

  it('refuses a register a newer tallenne migrated', async () => {
    const url = await server.createDatabase();
    await migratePostgres(url);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')", [LATEST_VERSION + 1]);
    await c.end();
    await expect(openPostgresIndex({ url, poolSize: 2, node: 'n1' })).rejects.toMatchObject({ code: 'TALLENNE_INDEX_VERSION' });
    await expect(migratePostgres(url)).rejects.toMatchObject({ code: 'TALLENNE_INDEX_VERSION' });
  });

  it('two `tallenne index migrate` at once: one applies, the other finds it done', async () => {
    const url = await server.createDatabase();
    const dir = tempDir('pg-migrate');
    const urlFile = join(dir, 'index.url');
    writeFileSync(urlFile, `${url}\n`, { mode: 0o600 });
    const config = configWith(dir, urlFile);
    const [a, b] = await Promise.all([runCli(['index', 'migrate', '--config', config]), runCli(['index', 'migrate', '--config', config])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const outs = [a.out, b.out].sort();
    expect(outs.filter((o) => o.includes(`applied 001 ${MIGRATIONS[0]!.name}`))).toHaveLength(1);
    expect(outs.filter((o) => o.includes(`already at schema version ${LATEST_VERSION}`))).toHaveLength(1);
    // The password never reaches the output.
    expect(a.out + b.out).not.toContain(server.password);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const rows = (await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r: { version: number }) => r.version);
    await c.end();
    expect(rows).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('a wrong password is refused without showing the URL\'s password', async () => {
    const url = (await server.createDatabase()).replace(server.password, 'not-the-password');
    const err = await migratePostgres(url).catch((e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'TALLENNE_INDEX_UNREACHABLE' });
    expect((err as Error).message).not.toContain('not-the-password');
    expect((err as Error).message).toContain('***');
  });
});
