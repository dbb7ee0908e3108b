import { describe, it, expect, vi } from 'vitest';

// This file's module graph sees the clock addon as not built (npm ci without a compiler, say).
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, existsSync: (p: import('node:fs').PathLike) => (String(p).endsWith('thread_cpu.node') ? false : fs.existsSync(p)) };
});

const { threadCpuMicros, threadCpuSource } = await import('../../../src/encoder/cpu-time.js');

describe('thread CPU clock without the addon', () => {
  it('reads the kernel\'s stat file for this thread, in ticks of 10 ms', () => {
    expect(threadCpuSource()).toBe('proc');
    const p0 = process.cpuUsage();
    const t0 = threadCpuMicros();
    expect(t0 % 10_000).toBe(0);
    // A fixed amount of work (its CPU time does not depend on how busy the box is).
    let x = 0;
    for (let i = 0; i < 1e8; i++) x += Math.sqrt(i);
    const spent = threadCpuMicros() - t0;
    const processUs = process.cpuUsage(p0);
    expect(x).toBeGreaterThan(0);
    expect(spent % 10_000).toBe(0);
    expect(spent).toBeGreaterThanOrEqual(20_000);
    // The thread's ticks are part of the process's time (one tick of slack for the rounding).
    expect(spent).toBeLessThanOrEqual(processUs.user + processUs.system + 10_000);
  });
});
