/**
 * A throwaway Kamailio on a loopback port, running the project's own dispatcher config
 * (deploy/kamailio/kamailio.cfg) over the given recorders. Its runtime files live in a temp
 * folder removed at the end of the test file; the process group is stopped with SIGTERM
 * (Kamailio's children go with it) and killed if it lingers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './daemon.js';
import { onFileEnd, tempDir } from './cleanup.js';

export const KAMAILIO_CONFIG = join(REPO, 'deploy', 'kamailio', 'kamailio.cfg');

export function kamailioInstalled(): boolean {
  return spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** A UDP port free on 127.0.0.1 right now. */
export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface KamailioHandle {
  readonly port: number;
  readonly log: () => string;
  stop(): Promise<void>;
}

/** The `-A` defines that point the shipped config at a test's folder and ports. */
export function kamailioDefines(opts: { port: number; dir: string; dispatcherList: string; pingIntervalS?: number }): string[] {
  return [
    '-A', `LISTEN=udp:127.0.0.1:${opts.port}`,
    '-A', `DISPATCHER_LIST="${opts.dispatcherList}"`,
    '-A', `CTL_SOCKET="unix:${join(opts.dir, 'kamailio_ctl')}"`,
    '-A', `DS_PING_INTERVAL=${opts.pingIntervalS ?? 1}`,
  ];
}

export async function startKamailio(recorderPorts: readonly number[]): Promise<KamailioHandle> {
  const dir = tempDir('kamailio');
  const dispatcherList = join(dir, 'dispatcher.list');
  writeFileSync(dispatcherList, recorderPorts.map((p) => `1 sip:127.0.0.1:${p}\n`).join(''));
  const port = await freeUdpPort();
  const proc: ChildProcess = spawn('kamailio', [
    '-f', KAMAILIO_CONFIG, '-DD', '-E', '-Y', dir, '-P', join(dir, 'kamailio.pid'),
    ...kamailioDefines({ port, dir, dispatcherList }),
  ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(-proc.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
    await exited;
    clearTimeout(t);
  };
  onFileEnd(stop);
  const deadline = Date.now() + 15_000;
  // Ready once its workers are up: the listening socket is bound before they start.
  while (!/io_listen_loop|ds_ping|recorder (up|down)/.test(out) || !out.includes(`127.0.0.1]:${port}`)) {
    if (proc.exitCode !== null) throw new Error(`kamailio exited: ${out.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`kamailio did not start: ${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, log: () => out, stop };
}
