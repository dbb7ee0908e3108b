/**
 * CPU time of the calling thread, for the encode-cost figure of each recording.
 *
 * Node 20 has no process.threadCpuUsage, and process.cpuUsage counts every thread (capture
 * included), so on Linux the thread's own utime + stime are read from /proc/thread-self/stat:
 * clock ticks of 10 ms, fine for a recording's encode, which takes tens of ms or more.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time of this thread in microseconds (of the process where the thread's own is unknown). */
export function threadCpuMicros(): number {
  const p = process as unknown as { threadCpuUsage?: () => NodeJS.CpuUsage };
  if (typeof p.threadCpuUsage === 'function') {
    const u = p.threadCpuUsage();
    return u.user + u.system;
  }
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
  } catch {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
}
