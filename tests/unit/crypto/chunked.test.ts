import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  CHUNK_OVERHEAD,
  ChunkSealer,
  HEADER_BYTES,
  chunkLayout,
  chunkOffset,
  chunksFor,
  isEncrypted,
  openAll,
  openChunk,
  parseHeader,
} from '../../../src/crypto/chunked.js';
import { TallenneError } from '../../../src/errors.js';

function seal(key: Buffer, plain: Buffer, chunkSize: number, pieces = 7): Buffer {
  const s = new ChunkSealer(key, chunkSize);
  const out: Buffer[] = [s.header];
  // Fed in uneven pieces, as Ogg pages arrive.
  let at = 0;
  for (let i = 0; at < plain.length; i++) {
    const n = Math.min(plain.length - at, 1 + ((i * 7919) % (pieces * 13)));
    out.push(...s.push(plain.subarray(at, at + n)));
    at += n;
  }
  out.push(...s.finish());
  return Buffer.concat(out);
}

function decryptCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof TallenneError ? e.code : `untyped: ${(e as Error).message}`;
  }
  return undefined;
}

/** [start, length] of chunk i in a stored file. */
function span(i: number, chunkSize: number): [number, number] {
  return [chunkOffset(i, chunkSize), chunkSize + CHUNK_OVERHEAD];
}

describe('chunked format', () => {
  const key = randomBytes(32);

  it('round-trips plaintext of every length around the chunk size, fed in any pieces', () => {
    const C = 64;
    for (const n of [0, 1, C - 1, C, C + 1, 2 * C, 3 * C + 5, 1000]) {
      const plain = randomBytes(n);
      const file = seal(key, plain, C);
      const { plaintext, complete } = openAll(key, file);
      expect(complete, `length ${n}`).toBe(true);
      expect(plaintext.equals(plain), `length ${n}`).toBe(true);
      // The final chunk is always short, so whole files never end on a full-length chunk.
      expect(chunkLayout(file.length, C).tailBytes).toBeGreaterThanOrEqual(CHUNK_OVERHEAD);
    }
  });

  it('writes a 64 KiB chunk size by default and a header that names it', () => {
    const s = new ChunkSealer(key);
    expect(s.header.length).toBe(HEADER_BYTES);
    expect(parseHeader(s.header)).toBe(64 * 1024);
    expect(isEncrypted(s.header)).toBe(true);
    expect(isEncrypted(Buffer.from('OggS\0\x02'))).toBe(false);
  });

  it('shows nothing of an Ogg stream: no "OggS" and no long run of one byte, even for silence', () => {
    // Pages of an Ogg stream of digital silence: repeated signatures and long zero runs.
    const page = Buffer.concat([Buffer.from('OggS'), Buffer.alloc(200)]);
    const plain = Buffer.concat(Array.from({ length: 2000 }, () => page));
    const file = seal(key, plain, 64 * 1024);
    expect(file.includes(Buffer.from('OggS'))).toBe(false);
    let longest = 0;
    let run = 0;
    for (let i = HEADER_BYTES; i < file.length; i++) longest = Math.max(longest, (run = file[i] === file[i - 1] ? run + 1 : 1));
    expect(longest).toBeLessThan(8);
  });

  it('decrypts any single chunk on its own: Range requests start anywhere', () => {
    const C = 100;
    const plain = randomBytes(1050);
    const file = seal(key, plain, C);
    const header = file.subarray(0, HEADER_BYTES);
    const { first, last } = chunksFor(430, 777, C);
    expect([first, last]).toEqual([4, 7]);
    for (let i = first; i <= last; i++) {
      const [at, len] = span(i, C);
      expect(openChunk(key, header, i, false, file.subarray(at, at + len)).equals(plain.subarray(i * C, (i + 1) * C))).toBe(true);
    }
  });

  it('a file cut short decrypts up to its last whole chunk and says it is incomplete', () => {
    const C = 100;
    const plain = randomBytes(1050);
    const file = seal(key, plain, C);
    for (const cut of [HEADER_BYTES, chunkOffset(3, C), chunkOffset(3, C) + 50, chunkOffset(10, C), file.length - 1]) {
      const { plaintext, complete } = openAll(key, file.subarray(0, cut));
      const whole = Math.floor((cut - HEADER_BYTES) / (C + CHUNK_OVERHEAD));
      expect(complete, `cut at ${cut}`).toBe(false);
      expect(plaintext.equals(plain.subarray(0, whole * C)), `cut at ${cut}`).toBe(true);
    }
  });

  it('refuses a tampered, reordered, dropped or swapped chunk, and a wrong key', () => {
    const C = 100;
    const file = seal(key, randomBytes(1050), C);
    const tampered = Buffer.from(file);
    tampered[chunkOffset(2, C) + 40]! ^= 0x01;
    expect(decryptCode(() => openAll(key, tampered))).toBe('TALLENNE_DECRYPT_FAILED');

    const [a, len] = span(1, C);
    const [b] = span(4, C);
    const swapped = Buffer.from(file);
    file.copy(swapped, a, b, b + len);
    file.copy(swapped, b, a, a + len);
    expect(decryptCode(() => openAll(key, swapped))).toBe('TALLENNE_DECRYPT_FAILED');

    const dropped = Buffer.concat([file.subarray(0, a), file.subarray(a + len)]);
    expect(decryptCode(() => openAll(key, dropped))).toBe('TALLENNE_DECRYPT_FAILED');

    // A chunk moved to the end of the file does not pass as the final chunk.
    const moved = Buffer.concat([file.subarray(0, a), file.subarray(a + len), file.subarray(a, a + len)]);
    expect(decryptCode(() => openAll(key, moved))).toBe('TALLENNE_DECRYPT_FAILED');

    // A header claiming another chunk size fails every chunk (it is in their associated data).
    const header = Buffer.from(file);
    header.writeUInt32BE(C + CHUNK_OVERHEAD, 8);
    expect(decryptCode(() => openAll(key, header))).toBe('TALLENNE_DECRYPT_FAILED');

    expect(decryptCode(() => openAll(randomBytes(32), file))).toBe('TALLENNE_DECRYPT_FAILED');
    // Another file's chunk from another position does not fit (its number is bound in).
    const other = seal(key, randomBytes(1050), C);
    const spliced = Buffer.from(file);
    other.copy(spliced, a, chunkOffset(2, C), chunkOffset(2, C) + len);
    expect(decryptCode(() => openAll(key, spliced))).toBe('TALLENNE_DECRYPT_FAILED');
  });

  it('refuses a header that is not ours', () => {
    expect(decryptCode(() => parseHeader(Buffer.from('OggS\0\x02\0\0\0\0\0\0')))).toBe('TALLENNE_DECRYPT_FAILED');
    const h = new ChunkSealer(key, 64).header;
    h[4] = 9;
    expect(decryptCode(() => parseHeader(h))).toBe('TALLENNE_DECRYPT_FAILED');
  });
});
