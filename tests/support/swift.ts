/**
 * A throwaway OpenStack Swift with its S3 API (s3api + tempauth + memcached), the S3 the tests
 * run against. It checks real AWS signatures: a wrong secret is refused.
 *
 * Everything is on 127.0.0.1 with free ephemeral ports (proxy, account, container, object and
 * memcached), the rings are built in the instance's own folder, and `stop()` ends every
 * process and removes the folder. The secret is random per instance.
 *
 * One instance serves a whole test run, and only runs that need one start it: the global
 * set-up (tests/global-setup.ts) serves a small loopback "broker" whose first request starts
 * Swift (about 13 s, overlapping with other test files); test files get the endpoint from it
 * with `useSwift()`. The broker stops Swift when the run ends.
 */
import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TEMP_PREFIX } from './cleanup.js';

/** What an S3 client needs to reach the run's Swift. */
export interface S3Endpoint {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

export interface SwiftServer {
  readonly s3: S3Endpoint;
  readonly dir: string;
  stop(): Promise<void>;
}

const PYTHON = '/usr/bin/python3';
const SERVERS = ['account', 'container', 'object'] as const;

export function swiftInstalled(): boolean {
  return spawnSync('swift-proxy-server', ['--help'], { stdio: 'ignore' }).status === 0
    && spawnSync('memcached', ['-h'], { stdio: 'ignore' }).status === 0;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freeTcpPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function serverConf(dir: string, name: string, port: number, body: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
user = root
swift_dir = ${dir}/etc
devices = ${dir}/srv
mount_check = false
disable_fallocate = true
log_name = ${name}
${body}`;
}

function proxyConf(dir: string, port: number, memcachedPort: number, secret: string): string {
  return serverConf(dir, 'proxy', port, `
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = ${secret} .admin
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachedPort}
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`);
}

/** The three rings in one Python process (swift-ring-builder would take nine). */
function ringScript(ports: Record<(typeof SERVERS)[number], number>): string {
  return `
from swift.common.ring import RingBuilder
for name, port in ${JSON.stringify(Object.entries(ports))}:
    b = RingBuilder(8, 1, 1)
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save(name + '.ring.gz')
`;
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthcheck`);
    return r.ok;
  } catch {
    return false;
  }
}

/** Starts a Swift instance in a new folder under TMPDIR. */
export async function startSwift(): Promise<SwiftServer> {
  const dir = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}swift-`));
  const procs: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  const stop = async (): Promise<void> => {
    for (const p of procs) {
      if (p.exitCode === null && p.signalCode === null) {
        try {
          process.kill(-p.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await Promise.all(exits);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const d of ['etc', 'srv/d1']) mkdirSync(join(dir, d), { recursive: true });
    const ports = { account: await freeTcpPort(), container: await freeTcpPort(), object: await freeTcpPort() };
    const proxyPort = await freeTcpPort();
    const memcachedPort = await freeTcpPort();
    const secret = randomBytes(12).toString('hex');
    const suffix = randomBytes(8).toString('hex');
    writeFileSync(join(dir, 'etc', 'swift.conf'), `[swift-hash]\nswift_hash_path_suffix = ${suffix}\nswift_hash_path_prefix = ${suffix}\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n`);
    for (const n of SERVERS) {
      writeFileSync(join(dir, 'etc', `${n}-server.conf`), serverConf(dir, n, ports[n], `[pipeline:main]\npipeline = ${n}-server\n[app:${n}-server]\nuse = egg:swift#${n}\n`));
    }
    writeFileSync(join(dir, 'etc', 'proxy-server.conf'), proxyConf(dir, proxyPort, memcachedPort, secret));
    await promisify(execFile)(PYTHON, ['-c', ringScript(ports)], { cwd: join(dir, 'etc') });

    const output = new Map<ChildProcess, () => string>();
    const launch = (cmd: string, args: string[]): void => {
      const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '';
      const keep = (d: Buffer): void => {
        out = (out + d.toString()).slice(-4000);
      };
      p.stdout!.on('data', keep);
      p.stderr!.on('data', keep);
      exits.push(new Promise((r) => p.once('exit', () => r())));
      procs.push(p);
      output.set(p, () => out);
    };
    launch('memcached', ['-u', 'nobody', '-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '64']);
    for (const n of [...SERVERS, 'proxy'] as const) launch(`swift-${n}-server`, [join(dir, 'etc', `${n}-server.conf`)]);

    const deadline = Date.now() + 90_000;
    const up = async (): Promise<boolean> => (await healthy(proxyPort))
      && (await Promise.all([...Object.values(ports), memcachedPort].map(canConnect))).every(Boolean);
    while (!(await up())) {
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead) throw new Error(`a Swift process exited at start-up: ${dead.spawnargs.join(' ')}\n${output.get(dead)!()}`);
      if (Date.now() > deadline) throw new Error('Swift did not come up within 90 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return {
      dir,
      s3: { endpoint: `http://127.0.0.1:${proxyPort}`, region: 'us-east-1', accessKeyId: 'test:tester', secretAccessKey: secret },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * For the global set-up: a loopback HTTP server whose first GET starts Swift; every GET
 * answers the endpoint as JSON once it is up (or 500 with why it is not). `close()` stops
 * Swift if it was started.
 */
export async function serveSwiftOnDemand(): Promise<{ url: string; close(): Promise<void> }> {
  let swift: Promise<SwiftServer> | null = null;
  const server: Server = createHttpServer((_req, res) => {
    swift ??= startSwift();
    swift.then(
      (s) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s.s3)),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  return {
    url,
    close: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      if (swift) await swift.then((s) => s.stop(), () => undefined);
    },
  };
}

/** The run's Swift (started on first use). In a test file: `const s3 = await useSwift()` in beforeAll. */
export async function useSwift(): Promise<S3Endpoint> {
  const { inject } = await import('vitest');
  const url = inject('swiftBroker');
  const r = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!r.ok) throw new Error(`the test run's Swift did not start: ${await r.text()}`);
  return (await r.json()) as S3Endpoint;
}

/**
 * A TCP relay in front of an endpoint that a test can cut (refusing and dropping every
 * connection, as an unreachable S3 does) and restore, without touching the run's shared Swift.
 */
export interface CuttableRelay {
  readonly port: number;
  readonly endpoint: string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startRelay(target: string): Promise<CuttableRelay> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let open = true;
  const server = createTcpServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    cut: () => {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore: () => {
      open = true;
    },
    close: async () => {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
