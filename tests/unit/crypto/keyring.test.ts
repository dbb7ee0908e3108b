import { describe, expect, it } from 'vitest';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring, newDataKey } from '../../../src/crypto/keyring.js';
import { TallenneError } from '../../../src/errors.js';
import { tempDir } from '../../support/cleanup.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof TallenneError ? e.code : `untyped: ${(e as Error).message}`;
  }
  return undefined;
}

describe('Keyring', () => {
  it('creates the key file with mode 0600 in a 0700 folder, and reads it back', () => {
    const file = join(tempDir('keyring'), 'keys', 'master.key');
    const ring = Keyring.open({ master_key_file: file });
    expect(ring.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    const again = Keyring.open({ master_key_file: file });
    expect(again.created).toBe(false);
    expect(again.currentKeyId).toBe(ring.currentKeyId);
    expect(ring.currentKeyId).toMatch(/^mk-\d{8}-\d{6}-[0-9a-f]{6}$/);
  });

  it('refuses a key file that group or others may read or write, with a typed error naming the mode', () => {
    const file = join(tempDir('keyring'), 'master.key');
    Keyring.open({ master_key_file: file });
    for (const mode of [0o640, 0o604, 0o620, 0o666]) {
      chmodSync(file, mode);
      let err: unknown;
      try {
        Keyring.open({ master_key_file: file });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TallenneError);
      expect((err as TallenneError).code).toBe('TALLENNE_KEY_FILE_INSECURE');
      expect((err as Error).message).toContain(mode.toString(8));
      // The message names the file and the mode, never the key.
      expect((err as Error).message).not.toContain(readFileSync(file, 'utf8').split('\n')[2]!.split(' ')[1]!);
    }
    chmodSync(file, 0o400);
    expect(code(() => Keyring.open({ master_key_file: file }))).toBeUndefined();
  });

  it('refuses a damaged file and a missing one when not asked to create it', () => {
    const dir = tempDir('keyring');
    expect(code(() => Keyring.open({ master_key_file: join(dir, 'none.key') }, { create: false }))).toBe('TALLENNE_KEY_FILE_INVALID');
    expect(Keyring.openIfPresent({ master_key_file: join(dir, 'none.key') })).toBeNull();
    const bad = join(dir, 'bad.key');
    for (const text of ['', '# only a comment\n', 'mk-1 c2hvcnQ=\n', 'mk-1 AAAA AAAA\n', `mk-1 ${Buffer.alloc(32).toString('base64')}\nmk-1 ${Buffer.alloc(32).toString('base64')}\n`]) {
      writeFileSync(bad, text, { mode: 0o600 });
      expect(code(() => Keyring.open({ master_key_file: bad }))).toBe('TALLENNE_KEY_FILE_INVALID');
    }
  });

  it('wraps and unwraps a data key bound to its context; a wrong context or a changed byte fails', () => {
    const ring = Keyring.open({ master_key_file: join(tempDir('keyring'), 'master.key') });
    const { key, wrapped } = newDataKey(ring, 'recording:A');
    expect(key.length).toBe(32);
    expect(wrapped.keyId).toBe(ring.currentKeyId);
    expect(JSON.parse(JSON.stringify(wrapped))).toEqual(wrapped);
    expect(ring.unwrap(wrapped, 'recording:A').equals(key)).toBe(true);
    expect(code(() => ring.unwrap(wrapped, 'recording:B'))).toBe('TALLENNE_DECRYPT_FAILED');
    const data = Buffer.from(wrapped.data, 'base64');
    data[3]! ^= 1;
    expect(code(() => ring.unwrap({ ...wrapped, data: data.toString('base64') }, 'recording:A'))).toBe('TALLENNE_DECRYPT_FAILED');
    expect(code(() => ring.unwrap({ ...wrapped, keyId: 'mk-other' }, 'recording:A'))).toBe('TALLENNE_KEY_UNKNOWN');
  });

  it('keeps old keys by id: a new current key wraps, the old one still unwraps, and a retired one is gone', () => {
    const file = join(tempDir('keyring'), 'master.key');
    const ring = Keyring.open({ master_key_file: file });
    const old = ring.currentKeyId;
    const before = newDataKey(ring, 'recording:A');
    // Another process (the CLI) adds a key: this keyring sees it without being reopened.
    const cli = Keyring.open({ master_key_file: file });
    const next = cli.addKey();
    expect(ring.currentKeyId).toBe(next);
    expect(ring.keyIds()).toEqual([old, next]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(newDataKey(ring, 'recording:B').wrapped.keyId).toBe(next);
    expect(ring.unwrap(before.wrapped, 'recording:A').equals(before.key)).toBe(true);
    expect(code(() => cli.retire(next))).toBe('TALLENNE_KEY_IN_USE');
    cli.retire(old);
    expect(code(() => ring.unwrap(before.wrapped, 'recording:A'))).toBe('TALLENNE_KEY_UNKNOWN');
    expect(code(() => cli.retire(old))).toBe('TALLENNE_KEY_UNKNOWN');
  });
});
