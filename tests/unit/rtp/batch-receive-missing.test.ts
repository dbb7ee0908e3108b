import { describe, it, expect, vi } from 'vitest';

// This file's module graph sees the addon as not built (npm ci without a compiler, say).
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, existsSync: (p: import('node:fs').PathLike) => (String(p).endsWith('udp_batch.node') ? false : fs.existsSync(p)) };
});

const { openBatchReceive, loadBatchAddon } = await import('../../../src/rtp/batch-receive.js');

describe('rtp.receive without the addon', () => {
  it('"batched" refuses to start with TALLENNE_BATCH_RECEIVE and says why; "auto" falls back to Node with a warning', () => {
    expect(loadBatchAddon()).toMatchObject({ error: expect.stringMatching(/not built .*npm ci builds it/) });
    expect(() => openBatchReceive('batched')).toThrow(expect.objectContaining({ code: 'TALLENNE_BATCH_RECEIVE', message: expect.stringMatching(/rtp\.receive = "batched": the native addon is not built/) }));
    const warnings: Array<{ obj: unknown; msg: string }> = [];
    const log = { warn: (obj: unknown, msg: string) => warnings.push({ obj, msg }), info: () => undefined } as unknown as import('../../../src/log.js').Logger;
    expect(openBatchReceive('auto', log)).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/read by Node, one datagram at a time/);
  });
});
