/**
 * The one seam for audio files. Everything that writes, reads, lists or deletes a
 * recording's audio goes through an AudioStore, so a later object-storage backend can stand
 * in for the local file system. Paths given out are relative keys ("recordings/2026/11/22/ID.opus").
 *
 * Encryption at rest lives here too. A writer given a data key seals what it is given into
 * the chunked format (src/crypto/chunked.ts); a reader gets the recording's reference (its
 * key, id and the wrapped data key from its index entry) and always reads plaintext, whole
 * or by byte range, mapped onto the chunks that hold it. A recording without a wrapped key
 * is a plain file (written with encryption off, or before it existed): both kinds are read
 * side by side. Sizes given out for a recording are plaintext sizes.
 */
import { mkdirSync, openSync, fsyncSync, closeSync, renameSync, unlinkSync, statSync, createReadStream, readdirSync, statfsSync, existsSync, readSync, writeSync } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { TallenneError } from '../errors.js';
import type { KeyWrapper, WrappedKey } from '../crypto/keyring.js';
import { CHUNK_OVERHEAD, ChunkSealer, HEADER_BYTES, chunkLayout, chunkOffset, chunksFor, isEncrypted, openChunk, openTail, parseHeader, type ChunkLayout } from '../crypto/chunked.js';

/** What a reader needs of a recording: where its audio is and, when encrypted, its wrapped data key. */
export interface AudioRef {
  readonly id: string;
  readonly file: string;
  readonly dataKey?: WrappedKey;
  /**
   * The plaintext size committed (the index entry's). With it, a final chunk of exactly the
   * length it should have that fails authentication is refused as damaged or tampered;
   * without it, or at any other length, the file is taken as cut short.
   */
  readonly fileBytes?: number;
}

/** Plaintext bytes start..end, both inclusive (as in an HTTP Range). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** A new audio file being written (synchronously: the encoder runs in a worker thread). */
export interface AudioWriter {
  readonly key: string;
  write(data: Uint8Array): void;
  /** Seals the end, fsyncs, renames into place. Returns the plaintext bytes written. */
  commit(): number;
  /** Drops the unfinished file. Idempotent; a no-op after commit. */
  abort(): void;
}

export interface AudioInfo {
  /** Plaintext bytes a reader gets. */
  readonly bytes: number;
  readonly encrypted: boolean;
  /** False when an encrypted file lacks its final chunk (cut short): it reads up to its last whole chunk. */
  readonly complete: boolean;
}

/** The associated data a recording's data key is wrapped with. */
export function dataKeyContext(recordingId: string): string {
  return `recording:${recordingId}`;
}

export interface AudioStore {
  /** Key under which the recording `id` answered at `answeredAt` is stored. */
  keyFor(id: string, answeredAt: number): string;
  /** A local path to write a new file to before commit (same file system as the final place). */
  tempPathFor(key: string): string;
  /** fsyncs the temp file, renames it atomically to its key, fsyncs the folder. Returns the size. */
  commit(tempPath: string, key: string): number;
  /**
   * A writer for a new file at `key`: encrypted under `dataKey` (the raw 256-bit key; its
   * wrapped form goes into the index entry), or plain without one.
   */
  createWriter(key: string, dataKey?: Uint8Array): AudioWriter;
  exists(key: string): boolean;
  /** Bytes the stored file takes on the volume (ciphertext for an encrypted one). */
  size(key: string): number | null;
  /** Plaintext size and state of a recording's audio; null when the file is gone. Throws on a key that does not open it. */
  info(ref: AudioRef): AudioInfo | null;
  /** The recording's audio as plaintext, whole or one byte range. */
  open(ref: AudioRef, range?: ByteRange): Readable;
  /** Local path of a key (the stored bytes: ciphertext when encrypted). */
  localPath(key: string): string;
  /** Deletes the file; true when it existed. */
  remove(key: string): boolean;
  /** Every stored key, for the orphan sweep. */
  keys(): Iterable<string>;
  /** Bytes free on the volume holding the audio. */
  freeBytes(): number;
  /** Size in bytes of the volume holding the audio. */
  volumeBytes(): number;
  /** Bytes used by stored audio (walks the tree; call rarely). */
  usedBytes(): number;
  /** Reads refused because a chunk or a wrapped key did not authenticate, or its master key is gone. */
  readonly decryptFailures: number;
}

export interface LocalAudioStoreOptions {
  /** Unwraps the data keys of encrypted recordings; without it only plain files can be read. */
  readonly keys?: KeyWrapper | null;
}

export class LocalAudioStore implements AudioStore {
  readonly root: string;
  private readonly recordingsDir: string;
  private readonly wrapper: KeyWrapper | null;
  private failures = 0;

  constructor(storageDir: string, opts: LocalAudioStoreOptions = {}) {
    this.root = storageDir;
    this.wrapper = opts.keys ?? null;
    this.recordingsDir = join(storageDir, 'recordings');
    mkdirSync(this.recordingsDir, { recursive: true, mode: 0o750 });
  }

  keyFor(id: string, answeredAt: number): string {
    const d = new Date(answeredAt);
    const yyyy = String(d.getUTCFullYear());
    const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
    const dd = String(d.getUTCDate()).padStart(2, '0');
    return `recordings/${yyyy}/${mm}/${dd}/${id}.opus`;
  }

  localPath(key: string): string {
    if (key.includes('..') || key.startsWith('/')) throw new Error(`bad audio key ${key}`);
    return join(this.root, key);
  }

  tempPathFor(key: string): string {
    const p = this.localPath(key);
    mkdirSync(dirname(p), { recursive: true, mode: 0o750 });
    return join(dirname(p), `.${p.slice(dirname(p).length + 1)}.tmp`);
  }

  commit(tempPath: string, key: string): number {
    const fd = openSync(tempPath, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    const finalPath = this.localPath(key);
    renameSync(tempPath, finalPath);
    fsyncDir(dirname(finalPath));
    return statSync(finalPath).size;
  }

  exists(key: string): boolean {
    return existsSync(this.localPath(key));
  }

  size(key: string): number | null {
    try {
      return statSync(this.localPath(key)).size;
    } catch {
      return null;
    }
  }

  get decryptFailures(): number {
    return this.failures;
  }

  createWriter(key: string, dataKey?: Uint8Array): AudioWriter {
    const temp = this.tempPathFor(key);
    const fd = openSync(temp, 'w', 0o640);
    const sealer = dataKey ? new ChunkSealer(dataKey) : null;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    let plain = 0;
    const writeAll = (b: Uint8Array): void => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off);
    };
    if (sealer) writeAll(sealer.header);
    return {
      key,
      write: (data) => {
        if (state !== 'open') throw new Error('the audio writer is closed');
        plain += data.length;
        if (!sealer) return writeAll(data);
        for (const c of sealer.push(data)) writeAll(c);
      },
      commit: () => {
        if (state !== 'open') throw new Error('the audio writer is closed');
        if (sealer) for (const c of sealer.finish()) writeAll(c);
        closeSync(fd);
        state = 'committed';
        this.commit(temp, key);
        return plain;
      },
      abort: () => {
        if (state !== 'open') return;
        state = 'aborted';
        closeSync(fd);
        try {
          unlinkSync(temp);
        } catch {
          // already gone
        }
      },
    };
  }

  info(ref: AudioRef): AudioInfo | null {
    let fd: number;
    try {
      fd = openSync(this.localPath(ref.file), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    try {
      const stored = statSync(this.localPath(ref.file)).size;
      const head = readAt(fd, 0, HEADER_BYTES);
      if (!ref.dataKey) {
        this.checkPlain(ref, head);
        return { bytes: stored, encrypted: false, complete: true };
      }
      return this.counted(() => {
        const key = this.unwrap(ref);
        const chunkSize = parseHeader(head);
        const layout = chunkLayout(stored, chunkSize);
        const tail = this.tail(ref, key, head, layout, readAt(fd, chunkOffset(layout.fullChunks, chunkSize), layout.tailBytes));
        return { bytes: layout.fullChunks * chunkSize + (tail?.length ?? 0), encrypted: true, complete: tail !== null };
      });
    } finally {
      closeSync(fd);
    }
  }

  open(ref: AudioRef, range?: ByteRange): Readable {
    const path = this.localPath(ref.file);
    if (!ref.dataKey) {
      // A plain file is streamed as it lies, once its first bytes show it is plain.
      return Readable.from(this.readPlain(ref, path, range), { objectMode: false });
    }
    return Readable.from(this.readEncrypted(ref, path, range), { objectMode: false });
  }

  private async *readPlain(ref: AudioRef, path: string, range: ByteRange | undefined): AsyncGenerator<Buffer> {
    const fh = await openFile(path, 'r');
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
      this.checkPlain(ref, head.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
    yield* createReadStream(path, range ? { start: range.start, end: range.end } : {}) as AsyncIterable<Buffer>;
  }

  private async *readEncrypted(ref: AudioRef, path: string, range: ByteRange | undefined): AsyncGenerator<Buffer> {
    const fh = await openFile(path, 'r');
    try {
      const stored = (await fh.stat()).size;
      const head = await readAtAsync(fh, 0, HEADER_BYTES);
      const { key, chunkSize } = this.counted(() => ({ key: this.unwrap(ref), chunkSize: parseHeader(head) }));
      const lay = chunkLayout(stored, chunkSize);
      const start = range?.start ?? 0;
      const end = range?.end ?? Number.MAX_SAFE_INTEGER;
      const { first, last } = chunksFor(start, end, chunkSize);
      for (let i = first; i <= last && i <= lay.fullChunks; i++) {
        let plain: Buffer | null;
        if (i < lay.fullChunks) {
          const sealed = await readAtAsync(fh, chunkOffset(i, chunkSize), chunkSize + CHUNK_OVERHEAD);
          plain = this.counted(() => openChunk(key, head, i, false, sealed));
        } else {
          const sealed = await readAtAsync(fh, chunkOffset(i, chunkSize), lay.tailBytes);
          plain = this.tail(ref, key, head, lay, sealed);
        }
        if (plain === null) return; // cut short: the file ends at its last whole chunk
        const base = i * chunkSize;
        const from = Math.max(0, start - base);
        const to = Math.min(plain.length, end - base + 1);
        if (to > from) yield plain.subarray(from, to);
      }
    } finally {
      await fh.close();
    }
  }

  /** The final chunk, null when the file was cut short (see AudioRef.fileBytes); a tampered one throws. */
  private tail(ref: AudioRef, key: Buffer, head: Buffer, lay: ChunkLayout, sealed: Buffer): Buffer | null {
    const t = openTail(key, head, lay, sealed);
    const expected = ref.fileBytes === undefined ? -1 : ref.fileBytes - lay.fullChunks * lay.chunkSize + CHUNK_OVERHEAD;
    if (t === null && lay.tailBytes >= CHUNK_OVERHEAD && lay.tailBytes === expected) {
      this.failures++;
      throw new TallenneError('TALLENNE_DECRYPT_FAILED', `recording ${ref.id}: its final chunk failed authentication (damaged or tampered)`);
    }
    return t;
  }

  /** A recording without a wrapped key must be a plain file: an encrypted one would be unreadable noise. */
  private checkPlain(ref: AudioRef, head: Uint8Array): void {
    if (isEncrypted(head)) {
      this.failures++;
      throw new TallenneError('TALLENNE_DECRYPT_FAILED', `recording ${ref.id}: the file is encrypted but its index entry holds no data key`);
    }
  }

  private unwrap(ref: AudioRef): Buffer {
    if (!this.wrapper) throw new TallenneError('TALLENNE_KEY_UNKNOWN', `recording ${ref.id} is encrypted and no master key file is open`);
    return this.wrapper.unwrap(ref.dataKey!, dataKeyContext(ref.id));
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

  remove(key: string): boolean {
    try {
      unlinkSync(this.localPath(key));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  *keys(): Iterable<string> {
    const stack = [this.recordingsDir];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) stack.push(p);
        else if (e.isFile() && e.name.endsWith('.opus') && !e.name.startsWith('.')) yield relative(this.root, p).split(sep).join('/');
      }
    }
  }

  freeBytes(): number {
    const s = statfsSync(this.root);
    return s.bavail * s.bsize;
  }

  volumeBytes(): number {
    const s = statfsSync(this.root);
    return s.blocks * s.bsize;
  }

  usedBytes(): number {
    let total = 0;
    for (const k of this.keys()) total += this.size(k) ?? 0;
    return total;
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return b.subarray(0, got);
}

async function readAtAsync(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(b, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return b.subarray(0, got);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
