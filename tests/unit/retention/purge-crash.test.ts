import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../../../src/config/load.js';
import { openIndex } from '../../../src/index/index.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { Purger } from '../../../src/retention/purge.js';
import { withRetention } from '../../../src/retention/policy.js';
import { makeEntry, ulidAt } from '../index/entry.js';
import { tempDir, trackChild } from '../../support/cleanup.js';
import { isStored, storeBytes } from '../../support/store.js';
import { recordingKey } from '../../../src/storage/audio-store.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const retention = parseConfigText('[retention]\naudio = "2s"\nmetadata = "5s"\n', 'x.toml').config.retention;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./purge-crash-child.ts', import.meta.url));

function runChild(dir: string, now: number, step: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = trackChild(spawn(process.execPath, [join(ROOT, 'node_modules/vite-node/vite-node.mjs'), CHILD, dir, String(now), step], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

async function oneRecording() {
  const dir = tempDir('crash');
  const store = new FsAudioStore(dir);
  const id = ulidAt(T0 - 60_000, 1);
  const key = recordingKey(id, T0);
  await storeBytes(store, key, Buffer.from('OggS'));
  const ix = await openIndex(dir);
  await ix.put(withRetention(makeEntry(id, T0 - 60_000, { file: key }), retention));
  await ix.close();
  return { dir, store, id, key };
}

describe('purge killed mid-way', () => {
  for (const [step, at, kind] of [
    ['intent', T0 + 2000, 'audio'],
    ['file-delete', T0 + 2000, 'audio'],
    ['intent', T0 + 5000, 'recording'],
    ['file-delete', T0 + 5000, 'recording'],
  ] as const) {
    it(`completes a ${kind} purge killed after the ${step} step on the next run`, async () => {
      const { dir, store, id, key } = await oneRecording();
      const child = await runChild(dir, at, step);
      expect(child.signal, child.stderr).toBe('SIGKILL');

      let ix = await openIndex(dir);
      // The crash left the intent committed and the entry in place.
      expect(ix.getIntent(id)).toMatchObject({ kind, file: key });
      expect(ix.get(id)).toBeDefined();
      expect((await isStored(store, key))).toBe(step === 'intent');
      expect(ix.audit.list({ limit: 10 })).toEqual([]);

      const report = await new Purger({ index: ix, store, now: () => at }).runOnce();
      expect(report.resumed).toEqual([id]);
      expect(report.errors).toEqual([]);
      expect((await isStored(store, key))).toBe(false);
      expect(ix.getIntent(id)).toBeUndefined();
      if (kind === 'audio') expect(ix.get(id)!.audioPurgedAt).toBeDefined();
      else expect(ix.get(id)).toBeUndefined();
      const log = ix.audit.list({ limit: 10 });
      expect(log).toHaveLength(1);
      expect(log[0]).toMatchObject({ action: kind === 'audio' ? 'purge-audio' : 'purge-recording', recordingId: id, details: { resumed: true, fileDeleted: step === 'intent' } });
      expect(await new Purger({ index: ix, store, now: () => at }).sweepOrphans({ graceMs: 0 })).toMatchObject({ orphanFiles: [], missingFiles: [] });
      await ix.close();

      // A second run finds nothing left to do.
      ix = await openIndex(dir);
      expect(await new Purger({ index: ix, store, now: () => at }).runOnce()).toMatchObject({ resumed: [], audio: [], metadata: [] });
      await ix.close();
    }, 30_000);
  }

  it('leaves a consistent state when killed right after the index commit', async () => {
    const { dir, store, id, key } = await oneRecording();
    const child = await runChild(dir, T0 + 2000, 'index-commit');
    expect(child.signal, child.stderr).toBe('SIGKILL');
    const ix = await openIndex(dir);
    expect((await isStored(store, key))).toBe(false);
    expect(ix.get(id)!.audioPurgedAt).toBeDefined();
    expect(ix.getIntent(id)).toBeUndefined();
    expect(ix.audit.list({ limit: 10 }).map((a) => a.action)).toEqual(['purge-audio']);
    expect(await new Purger({ index: ix, store, now: () => T0 + 2000 }).runOnce()).toMatchObject({ resumed: [], audio: [] });
    await ix.close();
  }, 30_000);
});
