/**
 * baresip (Debian's baresip-core) as a real SIP user agent for tests: one call to the daemon
 * on loopback, a sox-made tone as the microphone, then quit. Everything is bound to
 * 127.0.0.1 (`-n 127.0.0.1`): without it baresip would put the machine's eth0 address into
 * its SDP and send from it.
 */
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, trackChild } from './cleanup.js';

export type BaresipCodec = 'PCMU' | 'G722' | 'opus';

/** baresip's codec names with rate/channels, and the rate its aufile source must have. */
const CODECS: Readonly<Record<BaresipCodec, { name: string; wavRate: number; wavChannels: number; module: string }>> = {
  PCMU: { name: 'PCMU/8000/1', wavRate: 8000, wavChannels: 1, module: 'g711.so' },
  G722: { name: 'G722/16000/1', wavRate: 16000, wavChannels: 1, module: 'g722.so' },
  opus: { name: 'opus/48000/2', wavRate: 48000, wavChannels: 2, module: 'opus.so' },
};

export interface BaresipRun {
  readonly dir: string;
  /** Everything baresip printed, with the SIP trace (-s). */
  readonly output: string;
  readonly exitCode: number | null;
  /** Local addresses of baresip's UDP sockets seen while the call was up. */
  readonly socketAddresses: string[];
}

export function baresipAvailable(): boolean {
  try {
    execFileSync('baresip', ['-h'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    // `baresip -h` exits non-zero after printing its usage: present all the same.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** The UDP sockets of process `pid` and their local addresses (from `ss`). */
function udpSocketsOf(pid: number): string[] {
  const out = execFileSync('ss', ['-H', '-u', '-a', '-n', '-p'], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(`pid=${pid},`)).map((l) => l.trim().split(/\s+/)[3] ?? '');
}

/**
 * Dials `sip:rec@127.0.0.1:port` with one codec (SDES-SRTP with `srtp`), sends a `toneHz` sine for about `seconds`,
 * and hangs up by quitting. (baresip's aufile source must match the codec's rate and channels.) `rtpPorts` must not overlap the daemon's range.
 */
export async function baresipCall(opts: { sipPort: number; codec: BaresipCodec; toneHz: number; seconds: number; rtpPorts: [number, number]; srtp?: boolean }): Promise<BaresipRun> {
  const c = CODECS[opts.codec];
  const dir = tempDir('baresip');
  const wav = join(dir, 'tone.wav');
  execFileSync('sox', ['-n', '-r', String(c.wavRate), '-c', String(c.wavChannels), '-b', '16', wav, 'synth', String(opts.seconds + 2), 'sine', String(opts.toneHz), 'vol', '0.5']);
  writeFileSync(join(dir, 'config'), [
    'poll_method poll',
    'sip_listen 127.0.0.1:0',
    `audio_source aufile,${wav}`,
    `audio_player aufile,${join(dir, 'heard.wav')}`,
    `audio_alert aufile,${join(dir, 'alert.wav')}`,
    `rtp_ports ${opts.rtpPorts[0]}-${opts.rtpPorts[1]}`,
    'module_path /usr/lib/baresip/modules',
    `module ${c.module}`,
    'module aufile.so',
    // SDES-SRTP (a=crypto), insisted on by the account's mediaenc=srtp-mand.
    ...(opts.srtp ? ['module srtp.so'] : []),
    'module_app account.so',
    'module_app menu.so',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'accounts'), `<sip:tester@127.0.0.1>;regint=0;audio_codecs=${c.name}${opts.srtp ? ';mediaenc=srtp-mand' : ''}\n`);
  const proc = trackChild(spawn('baresip', ['-f', dir, '-n', '127.0.0.1', '-s', '-e', `/dial sip:rec@127.0.0.1:${opts.sipPort}`, '-t', String(opts.seconds)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => { output += s; });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => { output += s; });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const addresses = new Set<string>();
  const sampler = setInterval(() => {
    try {
      for (const a of udpSocketsOf(proc.pid!)) addresses.add(a);
    } catch {
      // The process may be gone between the listing and its parsing.
    }
  }, 500);
  const killer = setTimeout(() => proc.kill('SIGKILL'), (opts.seconds + 15) * 1000);
  const exitCode = await exited;
  clearInterval(sampler);
  clearTimeout(killer);
  return { dir, output, exitCode, socketAddresses: [...addresses] };
}

/** The SDP body of the first INVITE in baresip's SIP trace. */
export function inviteSdpOf(output: string): string {
  const at = output.indexOf('INVITE sip:');
  if (at < 0) return '';
  const body = output.indexOf('v=0', at);
  return body < 0 ? '' : output.slice(body, output.indexOf('\n\n', body) < 0 ? undefined : output.indexOf('\n\n', body));
}
