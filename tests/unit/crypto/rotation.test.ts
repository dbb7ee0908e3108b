import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Keyring, newDataKey } from '../../../src/crypto/keyring.js';
import { keyUsage, retireKey, rotateKeys, ROTATION_MARK } from '../../../src/crypto/rotation.js';
import { openIndex, type RecordingIndex } from '../../../src/index/index.js';
import { dataKeyContext, recordingKey } from '../../../src/storage/audio-store.js';
import { storeBytes, storedSize } from '../../support/store.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { TallenneError } from '../../../src/errors.js';
import { makeEntry, ulidAt } from '../index/entry.js';
import { tempDir, trackChild } from '../../support/cleanup.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./rotation-child.ts', import.meta.url));

/** A store with `n` encrypted recordings indexed; returns their plaintexts by id. */
async function setup(n: number) {
  const dir = tempDir('rotate');
  const keyFile = join(dir, 'master.key');
  const keyring = Keyring.open({ master_key_file: keyFile });
  const store = new FsAudioStore(dir, { keys: keyring });
  const plain = new Map<string, Buffer>();
  const ix = await openIndex(dir);
  for (let i = 0; i < n; i++) {
    const id = ulidAt(T0 + i, i);
    const key = recordingKey(id, T0);
    const sealed = newDataKey(keyring, dataKeyContext(id));
    const p = randomBytes(500 + i);
    await storeBytes(store, key, p, sealed.key);
    plain.set(id, p);
    await ix.put(makeEntry(id, T0 + i, { file: key, dataKey: sealed.wrapped, fileBytes: p.length }));
  }
  await ix.close();
  return { dir, keyFile, keyring, store, plain };
}

async function readsBack(ix: RecordingIndex, store: FsAudioStore, plain: Map<string, Buffer>): Promise<void> {
  for (const [id, p] of plain) {
    const parts: Buffer[] = [];
    for await (const c of await store.open(ix.get(id)!)) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(p), id).toBe(true);
  }
}

function runChild(dir: string, keyFile: string, point: string): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = trackChild(spawn(process.execPath, [join(ROOT, 'node_modules/vite-node/vite-node.mjs'), CHILD, dir, keyFile, point], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (_code, signal) => resolve({ signal, stderr }));
  });
}

describe('key rotation', () => {
  it('re-wraps every data key under a new master key without touching the audio, audited; the old key can then be retired', async () => {
    const { dir, keyring, store, plain } = await setup(5);
    const old = keyring.currentKeyId;
    const ix = await openIndex(dir);
    const files = await Promise.all([...plain.keys()].map((id) => storedSize(store, ix.get(id)!.file)));
    await expect(retireKey(ix, keyring, old, 'test')).rejects.toMatchObject({ code: 'TALLENNE_KEY_IN_USE' });

    const report = await rotateKeys(ix, keyring, { actor: 'test:admin', batch: 2 });
    expect(report).toMatchObject({ resumed: false, rewrapped: 5, failed: [] });
    expect(keyring.currentKeyId).toBe(report.to);
    expect(keyUsage(ix, keyring)).toEqual([
      { keyId: old, recordings: 0, held: true, current: false },
      { keyId: report.to, recordings: 5, held: true, current: true },
    ]);
    expect(await Promise.all([...plain.keys()].map((id) => storedSize(store, ix.get(id)!.file)))).toEqual(files);
    await readsBack(ix, store, plain);
    expect(ix.audit.list({ limit: 10 }).map((e) => [e.action, e.details])).toEqual([
      ['keys-rotate-start', { to: report.to }],
      ['keys-rotate-done', { to: report.to, rewrapped: 5, failed: 0 }],
    ]);

    await retireKey(ix, keyring, old, 'test:admin');
    expect(keyring.keyIds()).toEqual([report.to]);
    await expect(retireKey(ix, keyring, report.to, 'test')).rejects.toMatchObject({ code: 'TALLENNE_KEY_IN_USE' });
    await readsBack(ix, store, plain);
    await ix.close();
  });

  for (const point of ['mark', 'key', 'batch:1', 'batch:2']) {
    it(`killed after ${point} is finished by the next run, towards the same key`, async () => {
      const { dir, keyFile, keyring, store, plain } = await setup(5);
      const old = keyring.currentKeyId;
      const child = await runChild(dir, keyFile, point);
      expect(child.signal, child.stderr).toBe('SIGKILL');

      let ix = await openIndex(dir);
      const mark = ix.getMark<{ to: string }>(ROTATION_MARK)!;
      expect(mark.to).toMatch(/^mk-/);
      // Mid-way every recording still reads, whichever key wraps it now.
      await readsBack(ix, store, plain);
      const doneBefore = ix.dataKeyUsage().find((u) => u.keyId === mark.to)?.recordings ?? 0;
      expect(doneBefore).toBe(point.startsWith('batch:') ? 2 * Number(point.split(':')[1]) : 0);
      // Retiring the old key is refused while the rotation is unfinished.
      await expect(retireKey(ix, keyring, old, 'test')).rejects.toBeInstanceOf(TallenneError);

      const report = await rotateKeys(ix, keyring, { actor: 'test:admin' });
      expect(report).toMatchObject({ to: mark.to, resumed: true, rewrapped: 5 - doneBefore, failed: [] });
      expect(keyring.keyIds()).toEqual([old, mark.to]);
      expect(ix.getMark(ROTATION_MARK)).toBeUndefined();
      expect(ix.dataKeyUsage()).toEqual([{ keyId: mark.to, recordings: 5 }]);
      await readsBack(ix, store, plain);
      expect(ix.audit.list({ limit: 10 }).map((e) => e.action)).toEqual(['keys-rotate-start', 'keys-rotate-resume', 'keys-rotate-done']);
      expect(ix.audit.verify()).toMatchObject({ ok: true });
      await ix.close();
      ix = await openIndex(dir);
      await retireKey(ix, keyring, old, 'test');
      await ix.close();
    });
  }
});
