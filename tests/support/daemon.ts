/**
 * Starts the real daemon (bin/tallenne run) on loopback with ephemeral ports and a temp
 * data dir, reads its JSON log lines, and stops it. Needs `npm run build` (npm test does it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, trackChild } from './cleanup.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(REPO, 'bin', 'tallenne');

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export interface DaemonHandle {
  readonly dir: string;
  readonly configFile: string;
  readonly udpPort: number;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly rtpRange: [number, number];
  readonly logs: LogLine[];
  /** Every byte the daemon printed (stdout and stderr). */
  output(): string;
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
  proc: ChildProcess;
}

/** A random even RTP range per daemon, so parallel test files do not collide. */
export function randomRtpRange(size = 200): [number, number] {
  const base = 20000 + 2 * Math.floor(Math.random() * 14000);
  return [base, base + size - 1];
}

/**
 * The harness config: loopback only (`::1` for SIP and RTP with `ipv6`), ephemeral ports.
 * Encryption at rest is off here so tests can decode the stored Ogg file straight from disk;
 * the encryption tests turn it on (`set: { encryption: 'enabled = true' }`).
 */
export function makeConfig(dir: string, rtp: [number, number], extra = '', opts: { ipv6?: boolean } = {}): string {
  const host = opts.ipv6 ? '[::1]' : '127.0.0.1';
  return `
[sip]
listen = ["udp:${host}:0", "tcp:${host}:0"]
[rtp]
address = "${opts.ipv6 ? '::1' : '127.0.0.1'}"
port_min = ${rtp[0]}
port_max = ${rtp[1]}
[storage]
dir = "${dir}/data"
min_free = "1MiB"
[http]
listen = "127.0.0.1:0"
[calls]
shutdown_deadline = "5s"
[privacy]
hash_key_file = "${dir}/data/number-hash.key"
[encryption]
enabled = false
master_key_file = "${dir}/data/master.key"
[log]
level = "debug"
${extra}
`;
}

/**
 * `extraToml` is appended (new tables); `set` puts keys into the harness's own tables, e.g.
 * `{ rtp: 'inactivity_timeout = "2s"' }`.
 */
export async function startDaemon(opts: { dir?: string; extraToml?: string; set?: Record<string, string>; configText?: string; rtp?: [number, number]; ipv6?: boolean } = {}): Promise<DaemonHandle> {
  const dir = opts.dir ?? tempDir('daemon');
  const rtp = opts.rtp ?? randomRtpRange();
  const configFile = join(dir, 'tallenne.toml');
  let text = opts.configText ?? makeConfig(dir, rtp, opts.extraToml ?? '', { ipv6: opts.ipv6 ?? false });
  for (const [table, lines] of Object.entries(opts.set ?? {})) {
    // A key given here replaces the harness's own value of it.
    for (const key of lines.split('\n').map((l) => l.split('=')[0]!.trim()).filter(Boolean)) {
      text = text.replace(new RegExp(`^${key} = .*\n`, 'm'), '');
    }
    text = text.replace(`\n[${table}]\n`, `\n[${table}]\n${lines}\n`);
  }
  writeFileSync(configFile, text);
  const proc = trackChild(spawn(process.execPath, [BIN, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const logs: LogLine[] = [];
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  let raw = '';
  let partial = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    raw += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        throw new Error(`daemon printed a line that is not JSON: ${line}`);
      }
      logs.push(parsed);
      for (const w of [...waiters]) {
        if (w.pred(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => {
    raw += c;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for a log line; output so far:\n${raw.slice(-4000)}`)), timeoutMs);
      waiters.push({ pred, resolve: (l) => { clearTimeout(t); resolve(l); } });
      exited.then((code) => { clearTimeout(t); reject(new Error(`daemon exited (${code}) while waiting; output:\n${raw.slice(-4000)}`)); });
    });
  };
  try {
    await waitForLog((l) => l.msg === 'tallenne ready', 30_000);
  } catch (e) {
    // A daemon that never became ready is never handed out: stop it now, not at the file's end.
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    throw e;
  }
  const sip = logs.filter((l) => l.msg === 'SIP listening');
  const http = logs.find((l) => l.msg === 'HTTP listening')!;
  return {
    dir, configFile, logs, proc, exited, rtpRange: rtp,
    udpPort: sip.find((l) => l.transport === 'udp')!.port as number,
    tcpPort: sip.find((l) => l.transport === 'tcp')!.port as number,
    httpPort: http.port as number,
    output: () => raw,
    waitForLog,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
