/**
 * The daemon on a PostgreSQL register: a SIPREC call recorded by the real daemon is listed by
 * `tallenne recordings list` with the same config, the audit chain verifies with entries
 * naming the node, and the password of the register's URL appears in no output.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../support/postgres.js';
import { tempDir, trackChild } from '../support/cleanup.js';
import { BIN, startDaemon } from '../support/daemon.js';
import { recordCall } from '../support/recorded-call.js';
import { migratePostgres } from '../../src/index/postgres/open.js';

let server: PostgresHandle;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = trackChild(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => p.once('exit', (code) => resolve({ code, out })));
}

describe.skipIf(!postgresInstalled())('daemon on a PostgreSQL register', () => {
  it('records a call that `recordings list` on the same register shows', async () => {
    const url = await server.createDatabase();
    await migratePostgres(url);
    const dir = tempDir('pg-daemon');
    const urlFile = join(dir, 'index.url');
    writeFileSync(urlFile, `${url}\n`, { mode: 0o600 });
    const d = await startDaemon({
      dir,
      extraToml: `[index]\nbackend = "postgres"\nurl_file = "${urlFile}"\npool_size = 4\n[cluster]\nnode_id = "rec-a"\n`,
    });
    const id = await recordCall(d, '+358401234567', '1001', 1500);

    const list = await cli(['recordings', 'list', '--json', '--config', d.configFile]);
    expect(list.code).toBe(0);
    const items = JSON.parse(list.out) as Array<{ id: string; node: string | null; status: string }>;
    expect(items.map((e) => e.id)).toEqual([id]);
    expect(items[0]!.node).toBe('rec-a');

    const hold = await cli(['recordings', 'hold', id, '--reason', 'case 7', '--actor', 'tester', '--config', d.configFile]);
    expect(hold.code).toBe(0);
    const audit = await cli(['audit', 'list', '--json', '--config', d.configFile]);
    const entries = JSON.parse(audit.out) as Array<{ action: string; node?: string }>;
    expect(entries.length).toBeGreaterThan(0);
    expect(new Set(entries.map((e) => e.node))).toEqual(new Set(['rec-a']));
    const verify = await cli(['audit', 'verify', '--config', d.configFile]);
    expect(verify.code).toBe(0);
    expect(verify.out).toContain('audit log intact');

    const check = await cli(['check-config', '--config', d.configFile]);
    expect(check.code).toBe(0);
    for (const text of [list.out, audit.out, verify.out, check.out, d.output()]) expect(text).not.toContain(server.password);
    expect(await d.stop()).toBe(0);
  }, 120_000);
});
