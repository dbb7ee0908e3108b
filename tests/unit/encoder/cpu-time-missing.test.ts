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
    const t0 = threadCpuMicros();
    expect(t0 % 10_000).toBe(0);
    const end = Date.now() + 150;
    while (Date.now() < end) Math.sqrt(Math.random());
    const spent = threadCpuMicros() - t0;
    expect(spent % 10_000).toBe(0);
    expect(spent).toBeGreaterThanOrEqual(100_000);
    expect(spent).toBeLessThanOrEqual(400_000);
  });
});
