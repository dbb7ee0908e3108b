/**
 * Found by the chaos bench: a daemon killed between creating a call's spool and writing its
 * first META record left a spool that recovery could never finalise. It stayed in the spool
 * folder for ever, failing and retried at every start. Two fixes, tested here:
 *   - the first META reaches the file before appendMeta returns (the 200 OK goes out after
 *     it), so a call that was answered always leaves a spool with its META;
 *   - recovery deletes a spool that is only a torn beginning (empty, part of the magic, or a
 *     part of the META): its call was never answered. Any other spool is still recovered.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ulid } from 'ulid';
import { SpoolWriter } from '../../src/spool/writer.js';
import { SPOOL_MAGIC, RECORD_HEADER_BYTES, RecordType } from '../../src/spool/format.js';
import { startDaemon, removeDir } from '../support/daemon.js';
import { tempDir } from '../support/cleanup.js';
import { storedEntries } from '../support/index-reader.js';
import { fixtureMeta, writeSpoolFixture } from '../support/spool-fixture.js';

describe('a kill before the answer', () => {
  it('puts the first META record in the file before appendMeta returns', async () => {
    const dir = tempDir('spool-meta');
    try {
      const path = join(dir, 'a.spool');
      const w = new SpoolWriter(path);
      w.appendMeta(Date.now(), fixtureMeta({ legs: [{ index: 0, channel: 0, codec: 'PCMU' }] }, Date.now()));
      // Read at once, with no await in between: nothing may still be on its way to the file.
      const bytes = readFileSync(path);
      expect(bytes.subarray(0, SPOOL_MAGIC.length).equals(SPOOL_MAGIC)).toBe(true);
      expect(bytes.readUInt8(SPOOL_MAGIC.length)).toBe(RecordType.Meta);
      const length = bytes.readUInt32LE(SPOOL_MAGIC.length + 4);
      expect(bytes.length).toBe(SPOOL_MAGIC.length + RECORD_HEADER_BYTES + length);
      expect(w.bytesWritten).toBe(bytes.length);
      await w.close(null);
    } finally {
      removeDir(dir);
    }
  });

  it('deletes at start-up the spools of calls never answered, and still recovers the others', async () => {
    const dir = tempDir('kill-before-answer');
    try {
      const spoolDir = join(dir, 'data', 'spool');
      mkdirSync(spoolDir, { recursive: true });
      // A call that was answered and cut off: a recording marked truncated.
      const kept = ulid();
      await writeSpoolFixture({ path: join(spoolDir, `${kept}.spool`), id: kept, answeredAt: Date.now() - 5000, durationMs: 1000, end: false, legs: [{ index: 0, channel: 0, codec: 'PCMU', toneHz: 440 }] });
      // The torn beginnings a kill can leave before the 200 OK.
      const full = readFileSync(join(spoolDir, `${kept}.spool`));
      const metaEnd = SPOOL_MAGIC.length + RECORD_HEADER_BYTES + full.readUInt32LE(SPOOL_MAGIC.length + 4);
      const torn = [Buffer.alloc(0), SPOOL_MAGIC.subarray(0, 5), SPOOL_MAGIC, full.subarray(0, SPOOL_MAGIC.length + 10), full.subarray(0, metaEnd - 1)];
      const tornIds = torn.map((bytes) => {
        const id = ulid();
        writeFileSync(join(spoolDir, `${id}.spool`), bytes);
        return id;
      });
      // Not a spool at all: not ours to delete; it stays for an operator, as before.
      const alien = ulid();
      writeFileSync(join(spoolDir, `${alien}.spool`), 'not a spool');

      const d = await startDaemon({ dir });
      try {
        await d.waitForLog((l) => l.msg === 'recording stored' && l.recording === kept, 30_000);
        for (const id of tornIds) expect(d.logs.some((l) => l.msg.startsWith('deleting the spool of a call stopped before it was answered') && l.recording === id)).toBe(true);
        expect(readdirSync(spoolDir).sort()).toEqual([`${alien}.spool`]);
        const entries = await storedEntries(join(dir, 'data'));
        expect(entries.map((e) => [e.id, e.status])).toEqual([[kept, 'truncated']]);
        expect(existsSync(join(dir, 'data', entries[0]!.file)) && statSync(join(dir, 'data', entries[0]!.file)).size > 0).toBe(true);
      } finally {
        await d.stop();
      }
    } finally {
      removeDir(dir);
    }
  }, 60_000);
});
