/**
 * A throwaway OpenStack Swift with its S3 API for `npm run bench -- --storage-compare N`:
 * memcached, the account, container and object servers and the proxy (s3api + tempauth),
 * all on 127.0.0.1 at free ports, rings built in a temp folder, a random secret. stop() kills
 * every process and removes the folder. The tests have their own (tests/support/swift.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, listening } from './free-port.mjs';

const BACKENDS = ['account', 'container', 'object'];

export function swiftInstalled() {
  return spawnSync('swift-proxy-server', ['--help'], { stdio: 'ignore' }).status === 0 && spawnSync('memcached', ['-h'], { stdio: 'ignore' }).status === 0;
}

function conf(dir, name, port, rest) {
  return `[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = ${port}\nworkers = 0\nuser = root\nswift_dir = ${dir}/etc\ndevices = ${dir}/srv\nmount_check = false\ndisable_fallocate = true\nlog_name = ${name}\n${rest}`;
}

function proxyConf(dir, port, cachePort, secret) {
  const filters = {
    s3api: 'use = egg:swift#s3api\nlocation = us-east-1',
    tempauth: `use = egg:swift#tempauth\nuser_bench_bench = ${secret} .admin`,
    cache: `use = egg:swift#memcache\nmemcache_servers = 127.0.0.1:${cachePort}`,
    catch_errors: 'use = egg:swift#catch_errors', gatekeeper: 'use = egg:swift#gatekeeper', healthcheck: 'use = egg:swift#healthcheck',
    'proxy-logging': 'use = egg:swift#proxy_logging', listing_formats: 'use = egg:swift#listing_formats', copy: 'use = egg:swift#copy', slo: 'use = egg:swift#slo', dlo: 'use = egg:swift#dlo',
  };
  const pipeline = 'catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server';
  return conf(dir, 'proxy', port, `[pipeline:main]\npipeline = ${pipeline}\n[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n`
    + Object.entries(filters).map(([k, v]) => `[filter:${k}]\n${v}\n`).join(''));
}

export async function startBenchSwift() {
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-swift-'));
  const procs = [];
  const stop = () => {
    for (const p of procs) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const d of ['etc', 'srv/d1']) mkdirSync(join(dir, d), { recursive: true });
    const ports = {};
    for (const n of BACKENDS) ports[n] = await freePort();
    const proxyPort = await freePort();
    const cachePort = await freePort();
    const secret = randomBytes(12).toString('hex');
    const salt = randomBytes(8).toString('hex');
    writeFileSync(join(dir, 'etc', 'swift.conf'), `[swift-hash]\nswift_hash_path_suffix = ${salt}\nswift_hash_path_prefix = ${salt}\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n`);
    for (const n of BACKENDS) writeFileSync(join(dir, 'etc', `${n}-server.conf`), conf(dir, n, ports[n], `[pipeline:main]\npipeline = ${n}-server\n[app:${n}-server]\nuse = egg:swift#${n}\n`));
    writeFileSync(join(dir, 'etc', 'proxy-server.conf'), proxyConf(dir, proxyPort, cachePort, secret));
    // One ring per server, one device each, built in one Python run.
    execFileSync('/usr/bin/python3', ['-c', `from swift.common.ring import RingBuilder
for name, port in ${JSON.stringify(Object.entries(ports))}:
    b = RingBuilder(8, 1, 1)
    b.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1', 'weight': 1})
    b.rebalance()
    b.get_ring().save(name + '.ring.gz')`], { cwd: join(dir, 'etc') });
    const launch = (cmd, args) => procs.push(spawn(cmd, args, { stdio: 'ignore', detached: true }));
    launch('memcached', ['-u', 'nobody', '-l', '127.0.0.1', '-p', String(cachePort), '-U', '0', '-m', '64']);
    for (const n of [...BACKENDS, 'proxy']) launch(`swift-${n}-server`, [join(dir, 'etc', `${n}-server.conf`)]);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const ok = (await fetch(`http://127.0.0.1:${proxyPort}/healthcheck`).then((r) => r.ok, () => false))
        && (await Promise.all([...Object.values(ports), cachePort].map(listening))).every(Boolean);
      if (ok) break;
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead) throw new Error(`a Swift process exited at start-up: ${dead.spawnargs.join(' ')}`);
      if (Date.now() > deadline) throw new Error('Swift did not come up within 90 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    return { endpoint: `http://127.0.0.1:${proxyPort}`, region: 'us-east-1', accessKeyId: 'bench:bench', secretAccessKey: secret, stop };
  } catch (e) {
    stop();
    throw e;
  }
}
