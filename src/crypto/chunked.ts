/**
 * The chunked file format of encrypted audio, as pure functions over Buffers (no I/O).
 *
 *   header   12 bytes: magic "TLNE", version 1, three zero bytes, chunk size (u32 BE)
 *   chunk i  nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖ tag (16)
 *
 * Every chunk holds `chunkSize` bytes of plaintext except the last, the final chunk, which
 * holds fewer (none when the plaintext is an exact multiple). Its associated data is the
 * header, the chunk number (u32 BE) and a final flag, so:
 *   - chunk i sits at a known offset: playback and HTTP Range start at any chunk;
 *   - a chunk moved, dropped or swapped fails at its new position, and a changed byte fails
 *     its tag (TALLENNE_DECRYPT_FAILED);
 *   - a file cut short ends without a chunk that authenticates as final: it decrypts up to
 *     its last whole chunk and is reported incomplete, never mistaken for a whole file.
 * Nothing of the Ogg stream shows through: the header is the only plaintext.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { TallenneError } from '../errors.js';

export const MAGIC = Buffer.from('TLNE', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 12;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const CHUNK_OVERHEAD = NONCE_BYTES + TAG_BYTES;
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

export function encodeHeader(chunkSize: number = DEFAULT_CHUNK_BYTES): Buffer {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_BYTES) throw new RangeError(`chunk size ${chunkSize} is out of range`);
  const h = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(h, 0);
  h[4] = FORMAT_VERSION;
  h.writeUInt32BE(chunkSize, 8);
  return h;
}

/** True when `head` starts like an encrypted file (a plain Ogg file starts with "OggS"). */
export function isEncrypted(head: Uint8Array): boolean {
  return head.length >= MAGIC.length && MAGIC.equals(head.subarray(0, MAGIC.length));
}

/** The chunk size a header declares; throws TALLENNE_DECRYPT_FAILED on anything else. */
export function parseHeader(h: Uint8Array): number {
  if (h.length < HEADER_BYTES || !isEncrypted(h)) throw decryptFailed('the file is not an encrypted recording (no header)');
  if (h[4] !== FORMAT_VERSION) throw decryptFailed(`the file's format version ${h[4]} is not known`);
  const size = Buffer.from(h.buffer, h.byteOffset, HEADER_BYTES).readUInt32BE(8);
  if (size < 1 || size > MAX_CHUNK_BYTES || h[5] !== 0 || h[6] !== 0 || h[7] !== 0) throw decryptFailed('the file header is damaged');
  return size;
}

function aad(header: Uint8Array, index: number, final: boolean): Buffer {
  const a = Buffer.alloc(HEADER_BYTES + 5);
  Buffer.from(header.buffer, header.byteOffset, HEADER_BYTES).copy(a, 0);
  a.writeUInt32BE(index, HEADER_BYTES);
  a[HEADER_BYTES + 4] = final ? 1 : 0;
  return a;
}

export function sealChunk(key: Uint8Array, header: Uint8Array, index: number, final: boolean, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad(header, index, final));
  return Buffer.concat([nonce, c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** The plaintext of chunk `index`; throws TALLENNE_DECRYPT_FAILED when it does not authenticate there. */
export function openChunk(key: Uint8Array, header: Uint8Array, index: number, final: boolean, sealed: Uint8Array): Buffer {
  if (sealed.length < CHUNK_OVERHEAD) throw decryptFailed(`chunk ${index} is too short`);
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    d.setAAD(aad(header, index, final));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    return Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), d.final()]);
  } catch {
    throw decryptFailed(`chunk ${index} failed authentication (damaged, tampered, moved or under another key)`);
  }
}

/** Incremental encryption: plaintext in any pieces, sealed chunks out. Pure: the caller writes them. */
export class ChunkSealer {
  readonly header: Buffer;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  private finished = false;
  /** Plaintext bytes taken so far. */
  plaintextBytes = 0;

  constructor(private readonly key: Uint8Array, readonly chunkSize: number = DEFAULT_CHUNK_BYTES) {
    this.header = encodeHeader(chunkSize);
  }

  /** Takes plaintext; returns the chunks it completed (possibly none). */
  push(data: Uint8Array): Buffer[] {
    if (this.finished) throw new Error('the sealer is finished');
    this.plaintextBytes += data.length;
    this.pending.push(Buffer.from(data));
    this.pendingBytes += data.length;
    const out: Buffer[] = [];
    // Keep at least one byte back: the chunk that ends the file must be sealed as final.
    while (this.pendingBytes > this.chunkSize) {
      const all = Buffer.concat(this.pending);
      out.push(sealChunk(this.key, this.header, this.index++, false, all.subarray(0, this.chunkSize)));
      const rest = all.subarray(this.chunkSize);
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
    return out;
  }

  /** The last chunks: a whole one kept back, then the final (short or empty) chunk. */
  finish(): Buffer[] {
    if (this.finished) throw new Error('the sealer is finished');
    this.finished = true;
    const all = Buffer.concat(this.pending);
    this.pending = [];
    const out: Buffer[] = [];
    let rest = all;
    if (rest.length === this.chunkSize) {
      out.push(sealChunk(this.key, this.header, this.index++, false, rest));
      rest = Buffer.alloc(0);
    }
    out.push(sealChunk(this.key, this.header, this.index++, true, rest));
    return out;
  }
}

/** Where the chunks of a stored file lie, from its size alone. */
export interface ChunkLayout {
  readonly chunkSize: number;
  /** Chunks of full length (chunkSize of plaintext each). */
  readonly fullChunks: number;
  /** Bytes after the full chunks: the final chunk, or a torn piece of one. */
  readonly tailBytes: number;
}

export function chunkLayout(storedBytes: number, chunkSize: number): ChunkLayout {
  const body = Math.max(0, storedBytes - HEADER_BYTES);
  const full = chunkSize + CHUNK_OVERHEAD;
  return { chunkSize, fullChunks: Math.floor(body / full), tailBytes: body % full };
}

/** Byte offset of chunk `index` in the stored file. */
export function chunkOffset(index: number, chunkSize: number): number {
  return HEADER_BYTES + index * (chunkSize + CHUNK_OVERHEAD);
}

/** The chunks holding plaintext bytes start..end (inclusive). */
export function chunksFor(start: number, end: number, chunkSize: number): { first: number; last: number } {
  return { first: Math.floor(start / chunkSize), last: Math.floor(end / chunkSize) };
}

/**
 * Decrypts a whole stored file held in memory (tests, small files). Returns the plaintext of
 * every chunk up to the last whole one, and whether the final chunk was there.
 */
export function openAll(key: Uint8Array, file: Uint8Array): { plaintext: Buffer; complete: boolean } {
  const header = file.subarray(0, HEADER_BYTES);
  const chunkSize = parseHeader(header);
  const layout = chunkLayout(file.length, chunkSize);
  const parts: Buffer[] = [];
  for (let i = 0; i < layout.fullChunks; i++) {
    const at = chunkOffset(i, chunkSize);
    parts.push(openChunk(key, header, i, false, file.subarray(at, at + chunkSize + CHUNK_OVERHEAD)));
  }
  const tail = openTail(key, header, layout, file.subarray(chunkOffset(layout.fullChunks, chunkSize)));
  if (tail) parts.push(tail);
  return { plaintext: Buffer.concat(parts), complete: tail !== null };
}

/**
 * The final chunk from the bytes after the full chunks, or null when there is none that
 * authenticates as final: the file was cut short (torn write, lost tail), so it ends at its
 * last whole chunk. A full-length chunk is never final, so the tail cannot be mistaken.
 */
export function openTail(key: Uint8Array, header: Uint8Array, layout: ChunkLayout, tail: Uint8Array): Buffer | null {
  if (layout.tailBytes < CHUNK_OVERHEAD) return null;
  try {
    return openChunk(key, header, layout.fullChunks, true, tail.subarray(0, layout.tailBytes));
  } catch {
    return null;
  }
}

function decryptFailed(message: string): TallenneError {
  return new TallenneError('TALLENNE_DECRYPT_FAILED', message);
}
