import { describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Outbox, Undeliverable } from '../../../src/storage/outbox.js';
import { stagedPath } from '../../../src/storage/staging.js';
import { tempDir } from '../../support/cleanup.js';

describe('the upload outbox', () => {
  it('retries a failing delivery with growing delays until it goes through, counting each failure', async () => {
    const box = new Outbox(join(tempDir('outbox'), 'outbox'), { baseMs: 1, maxMs: 4, onFailure: (_k, _e, attempt, delay) => delays.push([attempt, delay]) });
    const delays: Array<[number, number]> = [];
    const key = 'recordings/2026/11/24/01J.opus';
    writeFileSync(stagedPath(box.area, key), 'audio');
    let tries = 0;
    const result = box.deliver(key, async () => {
      tries++;
      expect(box.waiting).toBe(1);
      if (tries < 5) throw new Error(`S3 down (${tries})`);
      return 'stored';
    });
    await expect(result).resolves.toBe('stored');
    expect(delays).toEqual([[0, 1], [1, 2], [2, 4], [3, 4]]);
    expect(box.failures).toBe(4);
    expect(box.lastError).toBeNull();
    expect(box.waiting).toBe(0);
    expect(existsSync(stagedPath(box.area, key))).toBe(false);
  });

  it('stops retrying when it closes, keeps what waits, and counts it again when opened anew', async () => {
    const dir = join(tempDir('outbox'), 'outbox');
    const box = new Outbox(dir, { baseMs: 60_000 });
    const keys = ['recordings/a.opus', 'recordings/b.opus'];
    for (const k of keys) writeFileSync(stagedPath(box.area, k), 'audio');
    let failedOnce!: () => void;
    const attempted = new Promise<void>((r) => (failedOnce = r));
    const waiting = box.deliver(keys[0]!, async () => {
      failedOnce();
      throw new Error('S3 refused: SignatureDoesNotMatch');
    });
    await attempted;
    await new Promise((r) => setImmediate(r));
    expect(box.lastError).toMatch(/SignatureDoesNotMatch/);
    box.close();
    await expect(waiting).rejects.toMatchObject({ code: 'TALLENNE_STORAGE_UNAVAILABLE' });
    await expect(box.deliver(keys[1]!, async () => { throw new Error('still down'); })).rejects.toMatchObject({ code: 'TALLENNE_STORAGE_UNAVAILABLE' });
    expect(box.waiting).toBe(2);
    const again = new Outbox(dir);
    expect(again.waiting).toBe(2);
    again.discard(keys[0]!);
    expect(again.waiting).toBe(1);
    expect(existsSync(stagedPath(again.area, keys[0]!))).toBe(false);
  });

  it('gives up at once on what another attempt cannot mend', async () => {
    const box = new Outbox(join(tempDir('outbox'), 'outbox'), { baseMs: 1 });
    let tries = 0;
    await expect(box.deliver('recordings/c.opus', async () => {
      tries++;
      throw new Undeliverable('TALLENNE_UPLOAD_MISMATCH', 'the staged file changed');
    })).rejects.toMatchObject({ code: 'TALLENNE_UPLOAD_MISMATCH' });
    expect(tries).toBe(1);
    expect(box.waiting).toBe(0);
  });
});
