import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../../../support/postgres.js';
import { tempDir, trackChild } from '../../../support/cleanup.js';
import { BIN } from '../../../support/daemon.js';
import { makeEntry } from '../entry.js';
import { openIndex } from '../../../../src/index/index.js';
import { migratePostgres, openPostgresIndex } from '../../../../src/index/postgres/open.js';
import { COPY_MARK } from '../../../../src/index/postgres/copy.js';

const N = 10_000;
let server: PostgresHandle;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

async function copiedSoFar(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ value: { copied: number } }>('SELECT value FROM marks WHERE name = $1', [COPY_MARK]);
    return r.rows[0]?.value.copied ?? 0;
  } finally {
    await c.end();
  }
}

describe.skipIf(!postgresInstalled())('tallenne index copy', () => {
  it(`copies ${N} entries, killed mid-way and resumed: counts and a sample match`, async () => {
    const dir = tempDir('pg-copy');
    const storage = join(dir, 'data');
    const lmdb = await openIndex(storage);
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < N; i += 1000) {
      const puts = [];
      for (let k = i; k < i + 1000; k++) {
        puts.push(lmdb.put(makeEntry(`rec-${String(k).padStart(5, '0')}`, t0 + k * 1000, { agentId: `agent${k % 50}`, team: `team${k % 5}`, customerNumberHash: `h${k % 700}` })));
      }
      await Promise.all(puts);
    }
    for (let k = 0; k < 30; k++) await lmdb.audit.append({ actor: 'test', action: 'note', recordingId: `rec-${String(k).padStart(5, '0')}`, details: { k } });
    await lmdb.users.addUser({ name: 'auditor', roles: ['security'], teams: [] }, { actor: 'test', action: 'user-add' });
    await lmdb.users.createToken('auditor', undefined);
    await lmdb.close();

    const url = await server.createDatabase();
    await migratePostgres(url);
    const urlFile = join(dir, 'index.url');
    writeFileSync(urlFile, `${url}\n`, { mode: 0o600 });
    const config = join(dir, 'tallenne.toml');
    writeFileSync(config, `[storage]\ndir = "${storage}"\n[privacy]\nhash_key_file = "${dir}/hash.key"\n[encryption]\nenabled = false\nmaster_key_file = "${dir}/master.key"\n[index]\nbackend = "postgres"\nurl_file = "${urlFile}"\n`);
    const args = [BIN, 'index', 'copy', '--from', `lmdb:${storage}`, '--to', 'postgres', '--batch', '100', '--config', config];

    const first = trackChild(spawn(process.execPath, args, { stdio: 'ignore' }));
    const firstExit = new Promise((r) => first.once('exit', r));
    // Kill it once a fifth has been committed (the checkpoint says so).
    while ((await copiedSoFar(url)) < N / 5) {
      if (first.exitCode !== null) throw new Error('the copy ended before it could be killed');
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await firstExit;
    const atKill = await copiedSoFar(url);
    expect(atKill).toBeGreaterThanOrEqual(N / 5);
    expect(atKill).toBeLessThan(N);

    const second = trackChild(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    second.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    second.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((r) => second.once('exit', r));
    expect(out).toContain('resumed and finished');
    expect(out).toContain(`recordings     ${N} (source ${N})`);
    expect(out).toContain('counts match');
    expect(out).not.toContain(server.password);
    expect(code).toBe(0);

    const target = await openPostgresIndex({ url, poolSize: 2, node: 'n1' });
    const source = await openIndex(storage);
    try {
      expect(await target.count()).toBe(N);
      for (let k = 0; k < N; k += 397) {
        const id = `rec-${String(k).padStart(5, '0')}`;
        expect(await target.get(id)).toEqual(await source.get(id));
      }
      const byAgent = await target.list({ agentId: 'agent7' }, { limit: 1000 });
      expect(byAgent.items.map((e) => e.id)).toEqual((await source.list({ agentId: 'agent7' }, { limit: 1000 })).items.map((e) => e.id));
      const verdict = await target.audit.verify();
      expect(verdict).toEqual(await source.audit.verify());
      expect(verdict.ok).toBe(true);
      expect((await target.users.getUser('auditor'))?.roles).toEqual(['security']);
      expect(await target.users.tokensOf('auditor')).toHaveLength(1);
    } finally {
      await target.close();
      await source.close();
    }
  }, 180_000);
});
