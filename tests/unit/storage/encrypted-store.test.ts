import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import type { Readable } from 'node:stream';
import { Keyring, newDataKey } from '../../../src/crypto/keyring.js';
import { openAll, CHUNK_OVERHEAD, HEADER_BYTES } from '../../../src/crypto/chunked.js';
import { dataKeyContext, recordingKey, type AudioRef } from '../../../src/storage/audio-store.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { TallenneError } from '../../../src/errors.js';
import { parseConfigText } from '../../../src/config/load.js';
import { openIndex } from '../../../src/index/index.js';
import { Purger } from '../../../src/retention/purge.js';
import { withRetention } from '../../../src/retention/policy.js';
import { erase } from '../../../src/retention/actions.js';
import { makeEntry, ulidAt } from '../index/entry.js';
import { tempDir } from '../../support/cleanup.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const CHUNK = 64 * 1024;

async function bytes(opening: Promise<Readable>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await opening) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function setup() {
  const dir = tempDir('encstore');
  const keyring = Keyring.open({ master_key_file: join(dir, 'master.key') });
  const store = new FsAudioStore(dir, { keys: keyring });
  let n = 0;
  /** Writes `plain` as recording n, encrypted (or plain with `encrypted: false`). */
  const write = async (plain: Buffer, encrypted = true): Promise<AudioRef & { key: string }> => {
    const id = ulidAt(T0 - 60_000, n++);
    const key = recordingKey(id, T0);
    const sealed = encrypted ? newDataKey(keyring, dataKeyContext(id)) : null;
    const w = store.create(key, sealed?.key);
    for (let at = 0; at < plain.length; at += 4000) w.write(plain.subarray(at, at + 4000));
    expect((await w.commit()).bytes).toBe(plain.length);
    return { id, file: key, key, ...(sealed ? { dataKey: sealed.wrapped } : {}) };
  };
  return { dir, keyring, store, write };
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof TallenneError ? e.code : `untyped: ${(e as Error).message}`;
  }
  return undefined;
}

describe('FsAudioStore with encryption', () => {
  it('stores ciphertext and reads plaintext back, whole and by any byte range', async () => {
    const { store, write, dir } = setup();
    const plain = randomBytes(3 * CHUNK + 1234);
    const ref = await write(plain);
    const onDisk = readFileSync(join(dir, ref.file));
    expect(onDisk.length).toBe(HEADER_BYTES + 4 * CHUNK_OVERHEAD + plain.length);
    expect(onDisk.includes(plain.subarray(100, 132))).toBe(false);
    expect(await store.stat(ref)).toEqual({ bytes: plain.length, encrypted: true, complete: true });
    expect((await bytes(store.open(ref))).equals(plain)).toBe(true);
    for (const [start, end] of [[0, 0], [0, 99], [CHUNK - 1, CHUNK], [CHUNK + 5, 3 * CHUNK + 10], [plain.length - 1, plain.length - 1], [100, plain.length - 1]] as const) {
      expect((await bytes(store.open(ref, { start, end }))).equals(plain.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
    }
  });

  it('reads plain and encrypted recordings side by side (a store from before encryption, or with it off)', async () => {
    const { store, write, dir } = setup();
    const a = Buffer.from('OggS plain recording');
    const b = Buffer.from('OggS encrypted recording');
    const plainRef = await write(a, false);
    const encRef = await write(b);
    expect(await text(await store.open(plainRef, { start: 5, end: 9 }))).toBe('plain');
    expect(await text(await store.open(encRef))).toBe(b.toString());
    expect(await store.stat(plainRef)).toEqual({ bytes: a.length, encrypted: false, complete: true });
    // Without the keyring, plain files still read; encrypted ones are refused with a typed error.
    const bare = new FsAudioStore(dir);
    expect(await text(await bare.open(plainRef))).toBe(a.toString());
    expect(await code(bytes(bare.open(encRef)))).toBe('TALLENNE_KEY_UNKNOWN');
    // An encrypted file whose entry lost its key is never served as if it were plain.
    expect(await code(bytes(store.open({ id: encRef.id, file: encRef.file })))).toBe('TALLENNE_DECRYPT_FAILED');
  });

  it('serves a file cut short up to its last whole chunk, and says it is incomplete', async () => {
    const { store, write, dir } = setup();
    const plain = randomBytes(3 * CHUNK + 500);
    const ref = await write(plain);
    truncateSync(join(dir, ref.file), HEADER_BYTES + 2 * (CHUNK + CHUNK_OVERHEAD) + 1000);
    expect(await store.stat(ref)).toEqual({ bytes: 2 * CHUNK, encrypted: true, complete: false });
    expect((await bytes(store.open(ref))).equals(plain.subarray(0, 2 * CHUNK))).toBe(true);
  });

  it('refuses a tampered chunk, a reordered file and a data key moved to another recording, and counts each', async () => {
    const { store, write, dir } = setup();
    const ref = await write(randomBytes(3 * CHUNK + 500));
    const path = join(dir, ref.file);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[HEADER_BYTES + CHUNK + CHUNK_OVERHEAD + 77]! ^= 0x80;
    writeFileSync(path, bad);
    expect(await code(bytes(store.open(ref)))).toBe('TALLENNE_DECRYPT_FAILED');
    // A Range that never touches the damaged chunk is still served.
    expect((await bytes(store.open(ref, { start: 0, end: 99 }))).length).toBe(100);
    expect(store.decryptFailures).toBe(1);

    const full = CHUNK + CHUNK_OVERHEAD;
    const swapped = Buffer.concat([good.subarray(0, HEADER_BYTES), good.subarray(HEADER_BYTES + full, HEADER_BYTES + 2 * full), good.subarray(HEADER_BYTES, HEADER_BYTES + full), good.subarray(HEADER_BYTES + 2 * full)]);
    writeFileSync(path, swapped);
    expect(await code(bytes(store.open(ref)))).toBe('TALLENNE_DECRYPT_FAILED');

    writeFileSync(path, good);
    const other = await write(randomBytes(10));
    expect(await code(bytes(store.open({ ...other, dataKey: ref.dataKey! })))).toBe('TALLENNE_DECRYPT_FAILED');
    expect(store.decryptFailures).toBe(3);
  });

  it('tells a tampered final chunk (its length is what the entry says) from a file cut short', async () => {
    const { store, write, dir } = setup();
    const plain = randomBytes(CHUNK + 300);
    const ref = { ...(await write(plain)), fileBytes: plain.length };
    const path = join(dir, ref.file);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 20]! ^= 0x04;
    writeFileSync(path, bad);
    await expect(store.stat(ref)).rejects.toThrow(TallenneError);
    expect(await code(bytes(store.open(ref)))).toBe('TALLENNE_DECRYPT_FAILED');
    // Cut inside the final chunk: served up to the last whole chunk.
    writeFileSync(path, good.subarray(0, good.length - 20));
    expect(await store.stat(ref)).toEqual({ bytes: CHUNK, encrypted: true, complete: false });
    expect((await bytes(store.open(ref))).equals(plain.subarray(0, CHUNK))).toBe(true);
  });
});

describe('crypto-shredding', () => {
  const retention = parseConfigText('[retention]\naudio = "2s"\nmetadata = "5s"\n', 'x.toml').config.retention;

  it('a purge destroys the wrapped key first: a copy of the file taken before cannot be decrypted with anything the recorder holds', async () => {
    const { dir, store, keyring, write } = setup();
    let now = T0;
    const ix = await openIndex(dir, { now: () => now });
    const plain = randomBytes(2 * CHUNK);
    const refs = [await write(plain), await write(plain)];
    for (const r of refs) await ix.put(withRetention(makeEntry(r.id, T0 - 60_000, { file: r.file, dataKey: r.dataKey!, fileBytes: plain.length }), retention));
    const backup = join(dir, 'backup-of-audio.bin');
    copyFileSync(join(dir, refs[0]!.file), backup);
    const wrappedBefore = JSON.stringify(refs[0]!.dataKey);
    const dataKeyBefore = keyring.unwrap(refs[0]!.dataKey!, dataKeyContext(refs[0]!.id));
    expect(openAll(dataKeyBefore, readFileSync(backup)).plaintext.equals(plain)).toBe(true);

    // Erasure of one; then audio expiry of the other: its file goes, the entry stays without its key.
    await erase(ix, store, refs[1]!.id, { actor: 'dpo', reason: 'subject request' }, retention, { now: () => now });
    now = T0 + 2000;
    const purger = new Purger({ index: ix, store, now: () => now });
    expect((await purger.runOnce()).audio).toEqual([refs[0]!.id]);

    const e = ix.get(refs[0]!.id)!;
    expect(e.audioPurgedAt).toBeDefined();
    expect(e.dataKey).toBeUndefined();
    expect(ix.get(refs[1]!.id)).toBeUndefined();
    expect(ix.wrappedUnder(keyring.currentKeyId, 100)).toEqual([]);
    expect(ix.dataKeyUsage()).toEqual([]);
    // Nowhere in what the index gives out: entries, intents, audit.
    const everything = JSON.stringify([ix.list({}, { limit: 100 }).items, ix.intents(100), ix.audit.list({ limit: 100 })]);
    expect(everything).not.toContain(JSON.parse(wrappedBefore).data);

    // Every data key the recorder can still unwrap, under every master key it holds, fails on the copy.
    const reachable = ix.list({}, { limit: 100 }).items.filter((x) => x.dataKey).map((x) => keyring.unwrap(x.dataKey!, dataKeyContext(x.id)));
    for (const k of reachable) expect(() => openAll(k, readFileSync(backup))).toThrow(TallenneError);
    // And through the store, with the entry as it is now: refused, nothing served.
    expect(await code(bytes(store.open({ id: e.id, file: e.file })))).toBeDefined();
    await ix.close();
  });

  it('shreds the key in the same transaction as the intent, before any file is touched', async () => {
    const { dir, store, write } = setup();
    const ix = await openIndex(dir, { now: () => T0 + 10_000 });
    const r = await write(randomBytes(100));
    await ix.put(withRetention(makeEntry(r.id, T0 - 60_000, { file: r.file, dataKey: r.dataKey! }), retention));
    let seen: unknown = 'unset';
    const purger = new Purger({ index: ix, store, now: () => T0 + 10_000 });
    await purger.runOnce({
      hooks: {
        afterStep(step, id) {
          if (step === 'intent') seen = { key: ix.get(id)?.dataKey, file: existsSync(join(dir, r.file)) };
        },
      },
    });
    expect(seen).toEqual({ key: undefined, file: true });
    await ix.close();
  });
});
