/**
 * The conformance suite every AudioStore backend runs (tests/conformance/*-store.test.ts):
 * what the rest of tallenne relies on, through the interface only. A backend's test file
 * calls describeStoreConformance with a way to open a fresh, empty store; the suite gives it
 * the key ring encrypted recordings are wrapped under and a private folder for local state
 * (staging, an outbox), both removed when the test file ends.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Keyring, newDataKey, type KeyWrapper } from '../../src/crypto/keyring.js';
import { CHUNK_OVERHEAD, DEFAULT_CHUNK_BYTES, HEADER_BYTES } from '../../src/crypto/chunked.js';
import { dataKeyContext, recordingKey, type AudioRef, type AudioStore, type StoredAudio } from '../../src/storage/audio-store.js';
import { TallenneError } from '../../src/errors.js';
import { tempDir } from '../support/cleanup.js';

export interface StoreContext {
  /** The key ring the store must unwrap data keys with. */
  readonly keys: KeyWrapper;
  /** A private, empty folder for the store's local state. */
  readonly dir: string;
}

export interface OpenedStore {
  readonly store: AudioStore;
  close(): Promise<void>;
}

const CHUNK = DEFAULT_CHUNK_BYTES;
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function bytes(opening: Promise<Readable>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of await opening) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return e instanceof TallenneError ? e.code : `untyped: ${(e as Error).message}`;
  }
  return undefined;
}

/** Every key the store lists, page by page, checking each page's size. */
async function listAll(store: AudioStore, limit: number): Promise<{ keys: string[]; sizes: Map<string, number>; pages: number }> {
  const keys: string[] = [];
  const sizes = new Map<string, number>();
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.list(cursor === undefined ? { limit } : { cursor, limit });
    pages++;
    expect(page.items.length).toBeLessThanOrEqual(limit);
    for (const i of page.items) {
      keys.push(i.key);
      sizes.set(i.key, i.storedBytes);
    }
    cursor = page.cursor;
    expect(pages).toBeLessThan(10_000);
  } while (cursor !== undefined);
  return { keys, sizes, pages };
}

/** Bytes an encrypted object of `plain` plaintext bytes takes (src/crypto/chunked.ts). */
function sealedSize(plain: number): number {
  return HEADER_BYTES + (Math.floor(plain / CHUNK) + 1) * CHUNK_OVERHEAD + plain;
}

export function describeStoreConformance(name: string, open: (ctx: StoreContext) => Promise<OpenedStore>): void {
  describe(`AudioStore conformance: ${name}`, () => {
    let opened: OpenedStore;
    let store: AudioStore;
    let keys: Keyring;
    let n = 0;

    beforeEach(async () => {
      const dir = tempDir('store-conformance');
      keys = Keyring.open({ master_key_file: join(dir, 'keys', 'master.key') });
      opened = await open({ keys, dir: join(dir, 'store') });
      store = opened.store;
    });

    afterEach(async () => {
      await opened.close();
    });

    const newId = (): string => `01JCONFORMANCE${String(++n).padStart(12, '0')}`;

    /** Stores `plain` as a new recording (encrypted unless told), written in pieces of `piece` bytes. */
    async function put(plain: Buffer, opts: { encrypted?: boolean; at?: number; piece?: number } = {}): Promise<{ ref: AudioRef; stored: StoredAudio }> {
      const id = newId();
      const file = recordingKey(id, opts.at ?? T0);
      const sealed = opts.encrypted === false ? null : newDataKey(keys, dataKeyContext(id));
      const w = store.create(file, sealed?.key);
      const piece = opts.piece ?? 5000;
      for (let at = 0; at < plain.length; at += piece) w.write(plain.subarray(at, at + piece));
      const stored = await w.commit();
      return { ref: { id, file, fileBytes: plain.length, ...(sealed ? { dataKey: sealed.wrapped } : {}) }, stored };
    }

    it('commits a plain recording with its size and SHA-256, and reads it back', async () => {
      const plain = randomBytes(10_000);
      const { ref, stored } = await put(plain, { encrypted: false });
      expect(stored).toEqual({ key: ref.file, bytes: plain.length, storedBytes: plain.length, sha256: sha256(plain) });
      expect(await store.stat(ref)).toEqual({ bytes: plain.length, encrypted: false, complete: true });
      expect((await bytes(store.open(ref))).equals(plain)).toBe(true);
      expect((await listAll(store, 100)).sizes.get(ref.file)).toBe(plain.length);
    });

    it('commits an encrypted recording: the checksum is of the stored ciphertext, reads give plaintext', async () => {
      const plain = randomBytes(2 * CHUNK + 777);
      const { ref, stored } = await put(plain);
      expect(stored.key).toBe(ref.file);
      expect(stored.bytes).toBe(plain.length);
      expect(stored.storedBytes).toBe(sealedSize(plain.length));
      expect(stored.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(stored.sha256).not.toBe(sha256(plain));
      expect((await listAll(store, 100)).sizes.get(ref.file)).toBe(stored.storedBytes);
      expect(await store.stat(ref)).toEqual({ bytes: plain.length, encrypted: true, complete: true });
      expect((await bytes(store.open(ref))).equals(plain)).toBe(true);
    });

    it('an empty recording commits and reads back empty', async () => {
      const { ref, stored } = await put(Buffer.alloc(0));
      expect(stored.bytes).toBe(0);
      expect(await store.stat(ref)).toEqual({ bytes: 0, encrypted: true, complete: true });
      expect((await bytes(store.open(ref))).length).toBe(0);
    });

    it('reads byte ranges of plain and encrypted recordings: inside a chunk, across chunk boundaries, the last byte, a suffix', async () => {
      const plain = randomBytes(3 * CHUNK + 1234);
      const enc = await put(plain);
      const clear = await put(plain, { encrypted: false });
      const size = plain.length;
      const ranges: Array<[number, number]> = [
        [0, 0], [0, 99], [CHUNK - 1, CHUNK], [CHUNK - 10, 2 * CHUNK + 10], [CHUNK, 2 * CHUNK - 1],
        [3 * CHUNK, size - 1], [size - 1, size - 1], [100, size - 1],
        // A suffix (bytes=-500), as the HTTP route turns it into a range from the size stat gives.
        [size - 500, size - 1],
      ];
      for (const { ref } of [enc, clear]) {
        expect((await store.stat(ref))!.bytes).toBe(size);
        for (const [start, end] of ranges) {
          const got = await bytes(store.open(ref, { start, end }));
          expect(got.equals(plain.subarray(start, end + 1)), `${ref.dataKey ? 'encrypted' : 'plain'} ${start}-${end}`).toBe(true);
        }
      }
    });

    it('reads an exact multiple of the chunk size, and a recording written in one piece or byte by byte alike', async () => {
      const plain = randomBytes(2 * CHUNK);
      const whole = await put(plain, { piece: plain.length });
      expect((await bytes(store.open(whole.ref))).equals(plain)).toBe(true);
      expect((await bytes(store.open(whole.ref, { start: 2 * CHUNK - 1, end: 2 * CHUNK - 1 }))).equals(plain.subarray(-1))).toBe(true);
      const small = randomBytes(300);
      const bytewise = await put(small, { piece: 1 });
      expect((await bytes(store.open(bytewise.ref))).equals(small)).toBe(true);
    });

    it('refuses an encrypted recording read without its key, or with another recording\'s key', async () => {
      const a = await put(randomBytes(1000));
      const b = await put(randomBytes(1000));
      const before = store.decryptFailures;
      expect(await codeOf(bytes(store.open({ id: a.ref.id, file: a.ref.file })))).toBe('TALLENNE_DECRYPT_FAILED');
      expect(await codeOf(bytes(store.open({ ...a.ref, dataKey: b.ref.dataKey! })))).toBe('TALLENNE_DECRYPT_FAILED');
      expect(await codeOf(store.stat({ ...a.ref, dataKey: b.ref.dataKey! }))).toBe('TALLENNE_DECRYPT_FAILED');
      expect(store.decryptFailures).toBe(before + 3);
    });

    it('abort drops an unfinished or finished recording; after commit it changes nothing', async () => {
      const id = newId();
      const file = recordingKey(id, T0);
      const w = store.create(file);
      w.write(randomBytes(5000));
      w.abort();
      w.abort();
      expect(() => w.write(Buffer.from('x'))).toThrow();
      const staged = store.create(recordingKey(newId(), T0));
      staged.write(randomBytes(100));
      staged.finish();
      staged.abort();
      const kept = await put(randomBytes(100), { encrypted: false });
      const again = store.create(kept.ref.file);
      again.write(Buffer.from('replaced'));
      again.abort();
      expect((await listAll(store, 100)).keys).toEqual([kept.ref.file]);
      expect(await store.stat({ id, file })).toBeNull();
      expect(await codeOf(store.open({ id, file }))).toBe('TALLENNE_NOT_FOUND');
      expect(await store.stat(kept.ref)).toMatchObject({ bytes: 100 });
    });

    it('stages and publishes as two steps: a finished recording is published later, and only then listed', async () => {
      const plain = randomBytes(CHUNK + 10);
      const id = newId();
      const file = recordingKey(id, T0);
      const sealed = newDataKey(keys, dataKeyContext(id));
      const w = store.create(file, sealed.key);
      w.write(plain);
      const staged = w.finish();
      expect(w.finish()).toEqual(staged);
      expect(staged).toMatchObject({ key: file, bytes: plain.length, storedBytes: sealedSize(plain.length), encrypted: true });
      expect((await listAll(store, 100)).keys).toEqual([]);
      expect(await store.stat({ id, file, dataKey: sealed.wrapped })).toBeNull();
      const stored = await store.publish(staged);
      expect(stored).toEqual({ key: file, bytes: plain.length, storedBytes: staged.storedBytes, sha256: staged.sha256 });
      expect((await bytes(store.open({ id, file, dataKey: sealed.wrapped })))).toEqual(plain);
    });

    it('a writer left behind (a crash: never finished, or finished and never published) leaves nothing listed, and the next writer of the key wins', async () => {
      const id = newId();
      const file = recordingKey(id, T0);
      const never = store.create(file);
      never.write(randomBytes(4000));
      const other = store.create(recordingKey(newId(), T0));
      other.write(randomBytes(4000));
      other.finish();
      expect((await listAll(store, 100)).keys).toEqual([]);
      expect(await store.stat({ id, file })).toBeNull();
      const plain = Buffer.from('OggS the recording written again');
      const w = store.create(file);
      w.write(plain);
      await w.commit();
      expect(await bytes(store.open({ id, file }))).toEqual(plain);
      expect((await listAll(store, 100)).keys).toEqual([file]);
      // Let go of what the abandoned writers hold; the stored recording stays.
      never.abort();
      other.abort();
      expect(await bytes(store.open({ id, file }))).toEqual(plain);
    });

    it('a new commit to a stored key replaces it', async () => {
      const first = await put(randomBytes(3000), { encrypted: false });
      const plain = Buffer.from('OggS shorter');
      const w = store.create(first.ref.file);
      w.write(plain);
      expect((await w.commit()).storedBytes).toBe(plain.length);
      expect(await bytes(store.open(first.ref))).toEqual(plain);
      expect((await listAll(store, 100)).sizes.get(first.ref.file)).toBe(plain.length);
    });

    it('removes a recording: true once, then false; gone from stat, open and list', async () => {
      const a = await put(randomBytes(2000));
      const b = await put(randomBytes(2000));
      expect(await store.remove(a.ref.file)).toBe(true);
      expect(await store.remove(a.ref.file)).toBe(false);
      expect(await store.stat(a.ref)).toBeNull();
      expect(await codeOf(store.open(a.ref))).toBe('TALLENNE_NOT_FOUND');
      expect((await listAll(store, 100)).keys).toEqual([b.ref.file]);
    });

    it('lists many keys in ascending order, page by page, each exactly once', async () => {
      const files: string[] = [];
      // Spread over days and months, so the keys sit in many folders or prefixes.
      for (let i = 0; i < 41; i++) files.push((await put(Buffer.from(`OggS ${i}`), { encrypted: false, at: T0 + ((i * 7) % 45) * DAY })).ref.file);
      const sorted = [...files].sort();
      for (const limit of [1, 7, 40, 41, 1000]) {
        const all = await listAll(store, limit);
        expect(all.keys, `limit ${limit}`).toEqual(sorted);
        expect(all.pages).toBeGreaterThanOrEqual(Math.ceil(files.length / limit));
      }
      // A cursor from the middle continues after it.
      const mid = sorted[20]!;
      const rest = await store.list({ cursor: mid, limit: 1000 });
      expect(rest.items.map((i) => i.key)).toEqual(sorted.slice(21));
      expect(await store.list({ cursor: sorted.at(-1)!, limit: 10 })).toMatchObject({ items: [] });
    });

    it('reports usage: used bytes follow commits and removals; free and volume bytes where there is a volume', async () => {
      const u0 = await store.usage({ used: true });
      expect(u0.usedBytes).toBe(0);
      const a = await put(randomBytes(5000));
      const b = await put(randomBytes(7000), { encrypted: false });
      const u1 = await store.usage({ used: true });
      expect(u1.usedBytes).toBe(a.stored.storedBytes + b.stored.storedBytes);
      await store.remove(a.ref.file);
      expect((await store.usage({ used: true })).usedBytes).toBe(b.stored.storedBytes);
      const v = await store.usage();
      expect(v.freeBytes === undefined).toBe(v.volumeBytes === undefined);
      if (v.freeBytes !== undefined) {
        expect(v.freeBytes).toBeGreaterThan(0);
        expect(v.freeBytes).toBeLessThanOrEqual(v.volumeBytes!);
      }
    });

    it('keeps concurrent writers apart, committed in parallel', async () => {
      const writers = Array.from({ length: 8 }, (_, i) => {
        const id = newId();
        const file = recordingKey(id, T0 + i * DAY);
        const sealed = i % 2 === 0 ? newDataKey(keys, dataKeyContext(id)) : null;
        return { ref: { id, file, ...(sealed ? { dataKey: sealed.wrapped } : {}) } as AudioRef, w: store.create(file, sealed?.key), plain: randomBytes(CHUNK / 2 + i * 9000) };
      });
      // Interleaved writes, as the encoder's threads write several calls at once.
      for (let at = 0; at < CHUNK * 2; at += 3000) for (const x of writers) if (at < x.plain.length) x.w.write(x.plain.subarray(at, at + 3000));
      const stored = await Promise.all(writers.map((x) => x.w.commit()));
      expect(stored.map((s) => s.bytes)).toEqual(writers.map((x) => x.plain.length));
      const back = await Promise.all(writers.map((x) => bytes(store.open(x.ref))));
      back.forEach((b, i) => expect(b.equals(writers[i]!.plain), `writer ${i}`).toBe(true));
      expect((await listAll(store, 3)).keys).toEqual(writers.map((x) => x.ref.file).sort());
    });

    it('refuses a key outside recordings/ or with .. in it', () => {
      for (const bad of ['../etc/passwd.opus', '/recordings/a.opus', 'recordings/../index/a.opus', 'index/a.opus', 'recordings/2026/a.wav', 'recordings/.staging/a.opus']) {
        expect(() => store.create(bad), bad).toThrow();
      }
    });
  });
}
