/**
 * A throwaway PostgreSQL 15 for a test file: `initdb` in a temp folder, the server run as the
 * `postgres` user (the tests run as root, which PostgreSQL refuses), listening on 127.0.0.1 at
 * a free ephemeral port with its unix socket in the same folder and fsync off. Connections
 * over TCP need the superuser's password (scram-sha-256), so the tests exercise the URL's
 * password like a real site. Start it once per test file (about 1 s); it is stopped and its
 * folder removed when the file ends.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { onFileEnd, tempDir } from './cleanup.js';

const BIN = '/usr/lib/postgresql/15/bin';

export function postgresInstalled(): boolean {
  return existsSync(join(BIN, 'initdb')) && spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status === 0;
}

export interface PostgresHandle {
  readonly port: number;
  readonly password: string;
  /** postgres://postgres:PASSWORD@127.0.0.1:PORT/DB */
  url(database?: string): string;
  /** A new empty database; resolves with its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server now (also done when the file ends). */
  stop(): Promise<void>;
}

async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The postgres user must be able to walk down to its folder: the run's temp folders are 0700. */
function letPostgresTraverse(dir: string): void {
  const top = resolve(tmpdir());
  for (let d = dirname(dir); d.startsWith(top); d = dirname(d)) {
    const mode = statSync(d).mode & 0o777;
    if ((mode & 0o001) === 0) chmodSync(d, mode | 0o001);
    if (d === top) break;
  }
}

function asPostgres(args: string[], what: string): void {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
}

function uid(name: string): number {
  return Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
}

export async function startPostgres(): Promise<PostgresHandle> {
  const dir = tempDir('pg');
  letPostgresTraverse(dir);
  const owner = uid('postgres');
  chownSync(dir, owner, owner);
  const data = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  chownSync(pwfile, owner, owner);
  asPostgres([join(BIN, 'initdb'), '-D', data, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync'], 'initdb');
  let port = 0;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (existsSync(join(data, 'postmaster.pid'))) asPostgres([join(BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'], 'pg_ctl stop');
  };
  onFileEnd(stop);
  // A port picked free can be taken before the server binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freeTcpPort();
    const opts = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    const r = spawnSync('runuser', ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '30', '-o', opts, 'start'], { encoding: 'utf8' });
    if (r.status === 0) break;
    if (attempt === 4) throw new Error(`pg_ctl start failed: ${r.stderr}${r.stdout}`);
  }
  const url = (database = 'postgres'): string => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  let made = 0;
  return {
    port,
    password,
    url,
    async createDatabase(name?: string): Promise<string> {
      const db = name ?? `t${process.pid}_${++made}`;
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${pg.escapeIdentifier(db)}`);
      } finally {
        await c.end();
      }
      return url(db);
    },
    stop,
  };
}
