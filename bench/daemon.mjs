/**
 * Runs the real daemon for the bench: its own process (`node bin/tallenne run`), a temp data
 * dir, loopback listeners on ephemeral ports, a wide RTP range. Reads its JSON log lines
 * (only the per-call lines the bench needs are kept), scrapes /metrics, and samples CPU and
 * memory from /proc/PID (all threads: capture, encoder workers, LMDB).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../', import.meta.url));
const BIN = join(REPO, 'bin', 'tallenne');
const CLK_TCK = 100;

/** utime + stime of a process in seconds (all threads), or null when it is gone. */
export function procCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** utime + stime of one thread (task) of a process in seconds, or null when it is gone. */
export function threadCpuSeconds(pid, tid) {
  return procCpuSeconds(`${pid}/task/${tid}`);
}

/** { rss, hwm } in bytes from /proc/PID/status, or null. */
export function procMemory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Prometheus text format → Map of "name{labels}" → value (labels as printed). */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

export function benchConfig(dir, o) {
  return `
[sip]
listen = ["udp:127.0.0.1:0"]
[rtp]
address = "127.0.0.1"
port_min = ${o.portMin}
port_max = ${o.portMax}
inactivity_timeout = "60s"
${o.rtpReceive ? `receive = "${o.rtpReceive}"` : ''}
[storage]
dir = "${dir}/data"
min_free = "64MiB"
[http]
listen = "127.0.0.1:0"
[calls]
max_concurrent = ${o.maxCalls}
shutdown_deadline = "5s"
[encoder]
complexity = ${o.complexity}
bitrate = ${o.bitrate}
skip_silence = ${o.skipSilence}
${o.workers ? `workers = ${o.workers}` : ''}
[privacy]
hash_key_file = "${dir}/data/number-hash.key"
[log]
level = "info"
${o.extra ?? ''}
${process.env.BENCH_EXTRA_TOML ?? ''}`;
}

export class BenchDaemon {
  /**
   * `o.dir`: the folder of an earlier daemon to start again on (its data, spools and config
   * stay; the chaos mode restarts a killed daemon this way); absent: a new temp folder.
   * `o.extra`: TOML appended to the config (sections the bench config leaves out).
   */
  static async start(o) {
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'tallenne-bench-'));
    const configFile = join(dir, 'tallenne.toml');
    if (!o.dir) writeFileSync(configFile, benchConfig(dir, o));
    const d = new BenchDaemon(dir, configFile, o.env ?? {}, o.repo ? join(o.repo, 'bin', 'tallenne') : BIN);
    d.stages = Boolean(o.env?.TALLENNE_STAGE_CLOCK);
    try {
      await d.ready();
    } catch (e) {
      // Never leave a daemon behind that the caller has no handle on, nor a folder it made.
      await d.kill();
      if (!o.dir) d.remove();
      throw e;
    }
    return d;
  }

  /**
   * `env`: extra environment for the daemon (TALLENNE_STAGE_CLOCK for `--stages`); `bin`: the
   * daemon to run (another checkout's, for `--against`).
   */
  constructor(dir, configFile, env = {}, bin = BIN) {
    this.dir = dir;
    this.configFile = configFile;
    this.spawnedAt = Date.now();
    // BENCH_DAEMON_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go to the daemon's node only.
    const flags = (process.env.BENCH_DAEMON_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    this.proc = spawn(process.execPath, [...flags, bin, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.pid = this.proc.pid;
    this.ended = new Map(); // recording id → log time of 'call ended'
    this.stored = new Map(); // recording id → { time, durationMs, status } of 'recording stored'
    this.recovering = new Set(); // recording ids of spools left by an earlier run
    this.purgeRuns = []; // 'purge run' lines: { time, audio, metadata, resumed, errors }
    this.answered = 0;
    this.errors = [];
    this.tail = '';
    this.waiters = [];
    let partial = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop();
      for (const line of lines) if (line) this.onLine(line);
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (c) => {
      this.tail = (this.tail + c).slice(-4000);
    });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  onLine(line) {
    let l;
    try {
      l = JSON.parse(line);
    } catch {
      this.tail = (this.tail + line + '\n').slice(-4000);
      return;
    }
    if (typeof l.time === 'string') l.time = Date.parse(l.time);
    if (l.msg === 'call answered') this.answered++;
    else if (l.msg === 'call ended') this.ended.set(l.recording, l.time);
    else if (l.msg === 'recording stored') this.stored.set(l.recording, { time: l.time, durationMs: l.durationMs, status: l.status });
    else if (l.msg === 'recovering a spool left by an earlier run') this.recovering.add(l.recording);
    else if (l.msg === 'purge run') this.purgeRuns.push({ time: l.time, audio: l.audio, metadata: l.metadata, resumed: l.resumed, errors: l.errors });
    else if (l.level >= 50 || l.level === 'error' || l.level === 'fatal') this.errors.push(l.msg);
    else if (l.msg === 'SIP listening') this.sipPort = l.port;
    else if (l.msg === 'HTTP listening') this.httpPort = l.port;
    else if (l.msg === 'tallenne ready') this.readyAt = l.time;
    for (const w of [...this.waiters]) if (w.pred(l)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(l);
    }
  }

  ready() {
    if (this.readyAt) return Promise.resolve();
    return new Promise((resolve, reject) => {
      // Generous: on a box shared with other work (the chaos mode restarts it a hundred times)
      // a start has taken over 25 s.
      const t = setTimeout(() => reject(new Error(`daemon did not start within 120 s:\n${this.tail}`)), 120_000);
      this.waiters.push({ pred: (l) => l.msg === 'tallenne ready', resolve: () => { clearTimeout(t); resolve(); } });
      this.exited.then((c) => { clearTimeout(t); reject(new Error(`daemon exited (${c}):\n${this.tail}`)); });
    });
  }

  async metrics() {
    const res = await fetch(`http://127.0.0.1:${this.httpPort}/metrics`);
    return parseMetrics(await res.text());
  }

  cpuSeconds() {
    return procCpuSeconds(this.pid);
  }

  memory() {
    return procMemory(this.pid);
  }

  /** CPU seconds of the daemon's main thread (capture, SIP, HTTP, index, timers). */
  mainThreadCpuSeconds() {
    return threadCpuSeconds(this.pid, this.pid);
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
      await this.exited;
      clearTimeout(t);
    }
  }

  /** SIGKILL, no warning: resolves once the process is gone. */
  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }

  remove() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
