import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { statTicks, threadCpuMicros, threadCpuMicrosFromProc, threadCpuSource } from '../../../src/encoder/cpu-time.js';

/** A fixed amount of work: its CPU time does not depend on how busy the box is. */
function spin(rounds: number): number {
  let x = 0;
  for (let i = 0; i < rounds * 1e6; i++) x += Math.sqrt(i);
  return x;
}

function line(text: string): [Buffer, number] {
  const b = Buffer.alloc(1024, 0x7a);
  const n = b.write(text, 'latin1');
  return [b, n];
}

describe('thread CPU clock', () => {
  it('reads the thread clock of the addon that npm ci builds', () => {
    expect(threadCpuSource()).toBe('clock');
  });

  it('counts this thread\'s CPU, not the process\'s, and agrees with the kernel\'s stat file', async () => {
    // A worker that burns CPU meanwhile must not show up in this thread's clock.
    const worker = new Worker('let x = 0; for (let i = 0; i < 1.5e8; i++) x += Math.sqrt(i);', { eval: true });
    const exited = new Promise((resolve) => worker.on('exit', resolve));
    const p0 = process.cpuUsage();
    const t0 = threadCpuMicros();
    const s0 = threadCpuMicrosFromProc();
    spin(100);
    const t1 = threadCpuMicros();
    const s1 = threadCpuMicrosFromProc();
    await exited;
    const processUs = process.cpuUsage(p0);
    const own = t1 - t0;
    expect(own).toBeGreaterThan(20_000);
    // The kernel's own account of the thread, in ticks of 10 ms.
    expect(Math.abs(s1 - s0 - own)).toBeLessThanOrEqual(30_000);
    // The worker's spinning is in the process's CPU and not in the thread's.
    expect(processUs.user + processUs.system).toBeGreaterThan(own * 1.5);
  });

  it('is each worker thread\'s own', async () => {
    // The built module (npm test builds first), as the daemon's encoder threads load it.
    const url = new URL('../../../dist/encoder/cpu-time.js', import.meta.url).href;
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(url)}).then((m) => {
        const a = m.threadCpuMicros();
        let x = 0; for (let i = 0; i < workerData * 1e6; i++) x += Math.sqrt(i);
        parentPort.postMessage({ source: m.threadCpuSource(), spent: m.threadCpuMicros() - a });
      });`;
    const run = (millions: number): Promise<{ source: string; spent: number }> =>
      new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: millions });
        w.once('message', (m) => {
          resolve(m as { source: string; spent: number });
          void w.terminate();
        });
        w.once('error', reject);
      });
    // Two at once, one with three times the work: each counts only its own.
    const [short, long] = await Promise.all([run(50), run(150)]);
    expect(short!.source).toBe('clock');
    expect(long!.source).toBe('clock');
    expect(short!.spent).toBeGreaterThan(10_000);
    expect(long!.spent / short!.spent).toBeGreaterThan(2);
    expect(long!.spent / short!.spent).toBeLessThan(4.5);
  });

  it('parses utime and stime from a stat line, whatever the command name holds', () => {
    const fields = 'S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 1 0';
    expect(statTicks(...line(`4242 (node) ${fields}`))).toBe(1290);
    expect(statTicks(...line(`4242 (a) b (c) ${fields}`))).toBe(1290);
    expect(statTicks(...line(`4242 (node) S 1 2 3 4 5 6 7 8 9 10 7 8`))).toBe(15);
    expect(statTicks(...line('4242 (node) S 1 2'))).toBeNaN();
    expect(statTicks(...line('no parenthesis here'))).toBeNaN();
    expect(statTicks(...line(`4242 (node) S 1 2 3 4 5 6 7 8 9 10 12x 56`))).toBeNaN();
    expect(statTicks(...line(`4242 (node) S 1 2 3 4 5 6 7 8 9 10  56`))).toBeNaN();
  });
});
