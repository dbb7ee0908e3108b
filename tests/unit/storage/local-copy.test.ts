import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Keyring, newDataKey } from '../../../src/crypto/keyring.js';
import { dataKeyContext, recordingKey } from '../../../src/storage/audio-store.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { withLocalCopy } from '../../../src/storage/local-copy.js';
import { tempDir } from '../../support/cleanup.js';
import { storeBytes } from '../../support/store.js';

describe('withLocalCopy', () => {
  const dir = tempDir('local-copy');
  const keyring = Keyring.open({ master_key_file: join(dir, 'master.key') });
  const store = new FsAudioStore(dir, { keys: keyring });
  const id = '01JLOCALCOPY0000000000000A';
  const file = recordingKey(id, Date.UTC(2026, 10, 24));
  const plain = randomBytes(150_000);

  it('gives the tool a private file of the plaintext and removes it after', async () => {
    const sealed = newDataKey(keyring, dataKeyContext(id));
    await storeBytes(store, file, plain, sealed.key);
    let seen = '';
    const size = await withLocalCopy(store, { id, file, dataKey: sealed.wrapped, fileBytes: plain.length }, async (path) => {
      seen = path;
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(dirname(path)).mode & 0o777).toBe(0o700);
      expect(readFileSync(path).equals(plain)).toBe(true);
      return statSync(path).size;
    });
    expect(size).toBe(plain.length);
    expect(existsSync(seen)).toBe(false);
    expect(existsSync(dirname(seen))).toBe(false);
  });

  it('removes the copy when the tool fails, and makes none for audio that is gone', async () => {
    let seen = '';
    await expect(withLocalCopy(store, { id: 'plain', file: recordingKey('plain', 0) }, async () => Promise.resolve(''))).rejects.toMatchObject({ code: 'TALLENNE_NOT_FOUND' });
    await storeBytes(store, recordingKey('plain', 0), Buffer.from('OggS plain'));
    await expect(
      withLocalCopy(store, { id: 'plain', file: recordingKey('plain', 0) }, async (path) => {
        seen = path;
        throw new Error('the tool failed');
      }),
    ).rejects.toThrow('the tool failed');
    expect(seen).not.toBe('');
    expect(existsSync(dirname(seen))).toBe(false);
  });
});
