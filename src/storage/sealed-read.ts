/**
 * Reading a recording's plaintext from its stored object, for any backend: the backend gives
 * random access to the stored bytes (a file handle, ranged GETs) and this maps a plaintext
 * size, state or byte range onto them. A plain object is streamed as it lies, once its first
 * bytes show it is plain; an encrypted one (src/crypto/chunked.ts) is opened chunk by chunk,
 * only the chunks a range needs. Refusals to decrypt are counted here.
 */
import { Readable } from 'node:stream';
import { TallenneError } from '../errors.js';
import type { KeyWrapper } from '../crypto/keyring.js';
import { CHUNK_OVERHEAD, HEADER_BYTES, chunkLayout, chunkOffset, chunksFor, isEncrypted, openChunk, openTail, parseHeader, type ChunkLayout } from '../crypto/chunked.js';
import { dataKeyContext, type AudioInfo, type AudioRef, type ByteRange } from './audio-store.js';

/** Random access to one stored object's bytes, as a backend gives it. */
export interface StoredObject {
  readonly storedBytes: number;
  /** Up to `length` bytes from `position` (fewer at the end). */
  read(position: number, length: number): Promise<Buffer>;
  /** The stored bytes start..end (inclusive; end defaults to the last). */
  stream(start: number, end?: number): Readable;
  close(): Promise<void>;
}

export class PlaintextReader {
  private failures = 0;

  /** `keys` unwraps the data keys of encrypted recordings; without it only plain ones can be read. */
  constructor(private readonly keys: KeyWrapper | null) {}

  /** Reads refused: a chunk or a wrapped key did not authenticate, or its master key is not held. */
  get decryptFailures(): number {
    return this.failures;
  }

  /** Plaintext size and state of the recording in `obj` (null when the store has none); `obj` is closed after. */
  async stat(ref: AudioRef, obj: StoredObject | null): Promise<AudioInfo | null> {
    if (!obj) return null;
    try {
      return await this.statOf(ref, obj);
    } finally {
      await obj.close();
    }
  }

  private async statOf(ref: AudioRef, obj: StoredObject): Promise<AudioInfo> {
    const head = await obj.read(0, HEADER_BYTES);
    if (!ref.dataKey) {
      this.checkPlain(ref, head);
      return { bytes: obj.storedBytes, encrypted: false, complete: true };
    }
    const { key, chunkSize } = this.counted(() => ({ key: this.unwrap(ref), chunkSize: parseHeader(head) }));
    const lay = chunkLayout(obj.storedBytes, chunkSize);
    const tail = this.tail(ref, key, head, lay, await obj.read(chunkOffset(lay.fullChunks, chunkSize), lay.tailBytes));
    return { bytes: lay.fullChunks * chunkSize + (tail?.length ?? 0), encrypted: true, complete: tail !== null };
  }

  /**
   * The plaintext of `obj`, whole or one range; `obj` is closed when the stream ends. Rejects
   * before any byte when the store has no such object (TALLENNE_NOT_FOUND), when it is not
   * what its reference says, or when its key does not open.
   */
  async open(ref: AudioRef, obj: StoredObject | null, range?: ByteRange): Promise<Readable> {
    if (!obj) throw new TallenneError('TALLENNE_NOT_FOUND', `the audio of recording ${ref.id} is not stored`);
    let out: Readable;
    try {
      const head = await obj.read(0, HEADER_BYTES);
      if (!ref.dataKey) {
        this.checkPlain(ref, head);
        out = obj.stream(range?.start ?? 0, range?.end);
      } else {
        const { key, chunkSize } = this.counted(() => ({ key: this.unwrap(ref), chunkSize: parseHeader(head) }));
        out = Readable.from(this.chunks(ref, obj, key, head, chunkSize, range), { objectMode: false });
      }
    } catch (e) {
      await obj.close();
      throw e;
    }
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      void obj.close();
    };
    out.once('close', close);
    out.once('end', close);
    out.once('error', close);
    return out;
  }

  private async *chunks(ref: AudioRef, obj: StoredObject, key: Buffer, head: Buffer, chunkSize: number, range: ByteRange | undefined): AsyncGenerator<Buffer> {
    const lay = chunkLayout(obj.storedBytes, chunkSize);
    const start = range?.start ?? 0;
    const end = range?.end ?? Number.MAX_SAFE_INTEGER;
    const { first, last } = chunksFor(start, end, chunkSize);
    for (let i = first; i <= last && i <= lay.fullChunks; i++) {
      let plain: Buffer | null;
      if (i < lay.fullChunks) {
        const sealed = await obj.read(chunkOffset(i, chunkSize), chunkSize + CHUNK_OVERHEAD);
        plain = this.counted(() => openChunk(key, head, i, false, sealed));
      } else {
        plain = this.tail(ref, key, head, lay, await obj.read(chunkOffset(i, chunkSize), lay.tailBytes));
      }
      if (plain === null) return; // cut short: it ends at its last whole chunk
      const base = i * chunkSize;
      const from = Math.max(0, start - base);
      const to = Math.min(plain.length, end - base + 1);
      if (to > from) yield plain.subarray(from, to);
    }
  }

  /** The final chunk, null when the object was cut short (see AudioRef.fileBytes); a tampered one throws. */
  private tail(ref: AudioRef, key: Buffer, head: Buffer, lay: ChunkLayout, sealed: Buffer): Buffer | null {
    const t = openTail(key, head, lay, sealed);
    const expected = ref.fileBytes === undefined ? -1 : ref.fileBytes - lay.fullChunks * lay.chunkSize + CHUNK_OVERHEAD;
    if (t === null && lay.tailBytes >= CHUNK_OVERHEAD && lay.tailBytes === expected) {
      this.failures++;
      throw new TallenneError('TALLENNE_DECRYPT_FAILED', `recording ${ref.id}: its final chunk failed authentication (damaged or tampered)`);
    }
    return t;
  }

  /** A recording without a wrapped key must be plain: an encrypted one would be unreadable noise. */
  private checkPlain(ref: AudioRef, head: Uint8Array): void {
    if (isEncrypted(head)) {
      this.failures++;
      throw new TallenneError('TALLENNE_DECRYPT_FAILED', `recording ${ref.id}: the audio is encrypted but its index entry holds no data key`);
    }
  }

  private unwrap(ref: AudioRef): Buffer {
    if (!this.keys) throw new TallenneError('TALLENNE_KEY_UNKNOWN', `recording ${ref.id} is encrypted and no master key file is open`);
    return this.keys.unwrap(ref.dataKey!, dataKeyContext(ref.id));
  }

  /** Runs `fn`, counting a refusal to decrypt. */
  private counted<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof TallenneError && (e.code === 'TALLENNE_DECRYPT_FAILED' || e.code === 'TALLENNE_KEY_UNKNOWN')) this.failures++;
      throw e;
    }
  }
}
