/**
 * A throwaway PostgreSQL 15 for `npm run bench -- --index postgres` when no --index-url is
 * given: initdb in a temp folder, run as the `postgres` user (the bench may run as root) on
 * 127.0.0.1 at a free port, fsync off (the bench measures queries, not the disk), removed at
 * stop. The tests have their own (tests/support/postgres.ts).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.mjs';

const BIN = '/usr/lib/postgresql/15/bin';

function asPostgres(args) {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args[0]} failed: ${r.stderr}${r.stdout}`);
}

export async function startBenchPostgres() {
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-pg-'));
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  chownSync(dir, uid, uid);
  const data = join(dir, 'data');
  try {
    asPostgres([join(BIN, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
    const port = await freePort();
    asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o',
      `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c shared_buffers=256MB`, 'start']);
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      stop() {
        spawnSync('runuser', ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop'], { stdio: 'ignore' });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
