/**
 * What else the box was doing during a measurement: the load average and the CPU that every
 * process outside the bench (the bench, its daemons, ffmpeg and their children excluded)
 * spent between two snapshots, read from /proc. A process that started and ended between the
 * snapshots is not seen; one that ended is counted up to the first snapshot only.
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = 100;

function stat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = s.lastIndexOf(')');
    const f = s.slice(close + 2).split(' ');
    return { pid: Number(pid), comm: s.slice(s.indexOf('(') + 1, close), ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / CLK_TCK };
  } catch {
    return null;
  }
}

export function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).map(Number);
  } catch {
    return null;
  }
}

/** A snapshot: time, load average, and CPU seconds per process not in this bench's tree. */
export function systemSnapshot() {
  const procs = new Map();
  let names;
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return { t: Date.now(), load: null, procs };
  }
  for (const n of names) {
    const p = stat(n);
    if (p) procs.set(p.pid, p);
  }
  const ours = new Set([process.pid]);
  // Descendants of the bench: repeat until no new child is found (parents may be listed after children).
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs.values()) if (!ours.has(p.pid) && ours.has(p.ppid)) {
      ours.add(p.pid);
      grew = true;
    }
  }
  for (const pid of ours) procs.delete(pid);
  return { t: Date.now(), load: loadAverage(), procs };
}

/** What the others spent between two snapshots: CPU seconds, cores on average, the top five by name. */
export function othersBetween(a, b) {
  const wall = (b.t - a.t) / 1000;
  const byName = new Map();
  let total = 0;
  for (const [pid, p] of b.procs) {
    const before = a.procs.get(pid);
    const d = p.cpu - (before && before.comm === p.comm ? before.cpu : 0);
    if (d <= 0) continue;
    total += d;
    byName.set(p.comm, (byName.get(p.comm) ?? 0) + d);
  }
  const top = [...byName].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([name, s]) => ({ name, cpuSeconds: Math.round(s * 10) / 10 }));
  return {
    wallSeconds: Math.round(wall * 10) / 10, loadStart: a.load, loadEnd: b.load,
    othersCpuSeconds: Math.round(total * 10) / 10, othersCores: wall > 0 ? Math.round((total / wall) * 100) / 100 : null, top,
  };
}
