/**
 * CPU time of the calling thread, for the encode-cost figure of each recording and the bench's
 * stage clock.
 *
 * Node 20 has no process.threadCpuUsage, and process.cpuUsage counts every thread (capture
 * included). The encoder reads this clock around every step of every live call, up to eight
 * times a second per call, so its cost counts: the native addon in native/thread-cpu (built by
 * `npm ci`) reads the thread's own clock in about 2 µs, to the nanosecond. Where it is not
 * built, /proc/thread-self/stat is read instead (open, read, close into a buffer made once:
 * about 17 µs, in clock ticks of 10 ms, which add up right over a call's many steps).
 * readFileSync cost about 50 µs a read there, most of it a 64 KiB buffer for a file of 300
 * bytes (bench/thread-clock.mjs).
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'thread-cpu', 'build', 'Release', 'thread_cpu.node');

/** Where the thread's CPU time comes from: the addon, the kernel's stat file, or (neither) the whole process. */
export type ThreadCpuSource = 'clock' | 'proc' | 'process';

type Clock = { source: ThreadCpuSource; read: () => number };

/** A stat line is about 300 bytes; the command name in it is at most 64. */
const statBuffer = Buffer.allocUnsafeSlow(1024);
const SPACE = 0x20;
const CLOSE_PAREN = 0x29;

/**
 * utime + stime in clock ticks from a stat line: the 14th and 15th fields, counted after the
 * command name's closing parenthesis (the name may itself hold spaces and parentheses).
 * NaN when the line is not one.
 */
export function statTicks(line: Buffer, length: number): number {
  const close = line.lastIndexOf(CLOSE_PAREN, length - 1);
  if (close < 0) return NaN;
  // After ") ", fields 3.. are separated by single spaces: utime is the 12th of them.
  let field = 0;
  let utime = 0;
  let value = 0;
  let digits = 0;
  for (let i = close + 2; i <= length; i++) {
    const c = i < length ? line[i]! : SPACE;
    if (c === SPACE) {
      if (field === 11 || field === 12) {
        if (digits === 0) return NaN;
        if (field === 11) utime = value;
        else return utime + value;
      }
      field++;
      value = 0;
      digits = 0;
    } else if (field === 11 || field === 12) {
      if (c < 0x30 || c > 0x39) return NaN;
      value = value * 10 + (c - 0x30);
      digits++;
    }
  }
  return NaN;
}

function procClock(): number {
  const fd = openSync('/proc/thread-self/stat', 'r');
  let length: number;
  try {
    length = readSync(fd, statBuffer, 0, statBuffer.length, 0);
  } finally {
    closeSync(fd);
  }
  const ticks = statTicks(statBuffer, length);
  if (!Number.isFinite(ticks)) throw new Error('/proc/thread-self/stat: no CPU times in it');
  return (ticks * 1e6) / CLOCK_TICKS_PER_SECOND;
}

function processClock(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

let clock: Clock | null = null;

function pick(): Clock {
  const p = process as unknown as { threadCpuUsage?: () => NodeJS.CpuUsage };
  if (typeof p.threadCpuUsage === 'function') {
    const usage = p.threadCpuUsage.bind(process);
    return { source: 'clock', read: () => { const u = usage(); return u.user + u.system; } };
  }
  if (process.platform === 'linux' && existsSync(ADDON_PATH)) {
    try {
      const native = createRequire(import.meta.url)(ADDON_PATH) as { micros(): number };
      native.micros();
      return { source: 'clock', read: () => native.micros() };
    } catch {
      // Built for another Node, or unloadable: the stat file below.
    }
  }
  try {
    let last = procClock();
    // A read that fails later (no file descriptor left) repeats the last reading: that step
    // counts as no CPU, where mixing in another clock would count the whole process.
    const read = (): number => {
      try {
        return (last = procClock());
      } catch {
        return last;
      }
    };
    return { source: 'proc', read };
  } catch {
    return { source: 'process', read: processClock };
  }
}

/** CPU time of this thread in microseconds (of the process where the thread's own is unknown). */
export function threadCpuMicros(): number {
  return (clock ??= pick()).read();
}

/** Which clock threadCpuMicros reads in this thread. */
export function threadCpuSource(): ThreadCpuSource {
  return (clock ??= pick()).source;
}

/** The stat-file clock itself, for tests: this thread's CPU time in microseconds. */
export function threadCpuMicrosFromProc(): number {
  return procClock();
}
