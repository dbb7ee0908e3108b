/**
 * Reads a spool file incrementally, from where the last read stopped, while the capture may
 * still be appending to it. Each read() hands over the records that are whole on disk now, in
 * file order; a record still being written (a torn tail) waits in the follower's buffer for
 * the next read. Once the writer is gone (the spool is closed, or the daemon died) a tail
 * that never became whole is what a crash cut short: `partialBytes` says how much.
 *
 * One record layout (format.ts: readRecordHeader) serves the whole-file reader (reader.ts),
 * the live encoder and anything else that follows a call. Memory is one buffer per follower
 * (grown only for a record larger than it), whatever the call's length.
 *
 * A sealed spool (cipher.ts) is read with its data key: each block (version 3) or record
 * (version 2) is authenticated at its position before its records are handed over, and one
 * that fails is skipped and counted (`rejected`), the others go on.
 */
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED, SPOOL_MAGIC_SEALED_V2, readBlockHeader, readRecordHeader } from './format.js';
import { SpoolOpener, SPOOL_TAG_BYTES, checkSpoolKey, parseSealedHeader } from './cipher.js';
import { TallenneError } from '../errors.js';

export interface SpoolRecord {
  readonly type: RecordType;
  readonly leg: number;
  readonly time: number;
  /** A view into the follower's buffer: valid until the next record is handed over. */
  readonly payload: Buffer;
}

/** Returning false (not a promise) stops the read after this record; the next read goes on from there. */
export type RecordHandler = (r: SpoolRecord) => void | boolean | Promise<void>;

export interface SpoolFollowerOptions {
  /**
   * Size of the read buffer (default 4 KiB: about 200 ms of a two-leg G.711 call; a read
   * loops until it has all). Small, since a live call's follower lives as long as the call.
   */
  bufferBytes?: number;
  /** The data key of a sealed spool (unwrapped from its header by the key ring). */
  key?: Uint8Array | undefined;
  /**
   * Read with a blocking pread instead of the thread pool: for an encoder worker thread, which
   * has nothing else to do while it waits, and saves the pool hop and the promise of each read
   * (a live call's spool is in the page cache: it was just written). Never on the main thread.
   */
  blockingReads?: boolean | undefined;
}

const DEFAULT_BUFFER_BYTES = 4 * 1024;
/** nextInBlock: the open block had no record left. */
const BLOCK_DONE = Symbol('block done');

export class SpoolFollower {
  readonly path: string;
  private fh: FileHandle | null = null;
  private buf: Buffer;
  private start = 0;
  private end = 0;
  /** File position of the next byte to read. */
  private filePos = 0;
  private magicSeen = false;
  private closed = false;
  private readonly key: Uint8Array | undefined;
  private readonly blocking: boolean;
  /** Opens the records (version 2) or blocks (version 3) of a sealed spool; null for a plain one. */
  private opener: SpoolOpener | null = null;
  /** The spool is sealed in blocks (version 3). */
  private blocks = false;
  /** The plain records of the block being handed over, and the position of the next one. */
  private block: Buffer | null = null;
  private blockPos = 0;
  /** Sealed blocks or records that failed authentication (tampered, damaged or out of place): skipped. */
  rejected = 0;
  /** A sealed spool's magic was read but its key header is not whole (yet, or ever after a crash). */
  headerCut = false;
  /** Records handed over so far. */
  records = 0;
  /** The END record was read: the call ended normally and nothing follows. */
  ended = false;
  /** A record header made no sense: the file is damaged there and nothing after it is read. */
  damaged = false;

  constructor(path: string, opts: SpoolFollowerOptions = {}) {
    this.path = path;
    this.buf = Buffer.allocUnsafe(opts.bufferBytes ?? DEFAULT_BUFFER_BYTES);
    this.key = opts.key;
    this.blocking = opts.blockingReads === true;
  }

  /** Bytes read from the file but not yet whole records (a record being written, or torn). */
  get partialBytes(): number {
    return this.end - this.start;
  }

  /** Bytes of the file consumed as whole records (and the magic). */
  get offset(): number {
    return this.filePos - (this.end - this.start);
  }

  /** The file started with the spool magic (false while fewer than 8 bytes exist). */
  get isSpool(): boolean {
    return this.magicSeen;
  }

  /** The read buffer's size: the follower's own memory. */
  get bufferBytes(): number {
    return this.buf.length;
  }

  /**
   * Hands every record that is whole on disk now to `onRecord`, in file order, and returns
   * how many. Throws TALLENNE_SPOOL_CORRUPT when the file does not start as a spool.
   */
  async read(onRecord: RecordHandler): Promise<number> {
    if (this.closed) return 0;
    if (this.fh === null) this.fh = await open(this.path, 'r');
    let n = 0;
    let eof = false;
    for (;;) {
      if (this.damaged || this.ended) return n;
      if (!this.magicSeen) {
        if (this.end - this.start < SPOOL_MAGIC.length) {
          if (eof) return n;
          eof = await this.fill();
          continue;
        }
        const magic = this.buf.subarray(this.start, this.start + SPOOL_MAGIC.length);
        const v3 = magic.equals(SPOOL_MAGIC_SEALED);
        if (v3 || magic.equals(SPOOL_MAGIC_SEALED_V2)) {
          const parsed = parseSealedHeader(this.buf.subarray(this.start + SPOOL_MAGIC.length, this.end));
          if (parsed === 'short') {
            if (eof) {
              this.headerCut = true;
              return n;
            }
            eof = await this.fill();
            continue;
          }
          this.headerCut = false;
          if (parsed === null) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${this.path}: the sealed spool's header is damaged`);
          if (!this.key) throw new TallenneError('TALLENNE_SPOOL_KEY', `${this.path}: the spool is sealed and no key was given`);
          checkSpoolKey(parsed.header, this.key);
          this.opener = new SpoolOpener(this.key, v3 ? 3 : 2);
          this.blocks = v3;
          this.start += SPOOL_MAGIC.length + parsed.bytes;
        } else if (magic.equals(SPOOL_MAGIC)) {
          this.start += SPOOL_MAGIC.length;
        } else {
          throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${this.path}: not a spool file`);
        }
        this.magicSeen = true;
      }
      if (this.block) {
        const p = this.nextInBlock(onRecord);
        if (p === BLOCK_DONE) continue;
        n++;
        if (p === false) return n;
        if (p instanceof Promise) await p;
        continue;
      }
      const avail = this.end - this.start;
      const h = avail < RECORD_HEADER_BYTES ? undefined : this.blocks ? readBlockHeader(this.buf, this.start, SPOOL_TAG_BYTES) : readRecordHeader(this.buf, this.start, this.opener ? SPOOL_TAG_BYTES : 0);
      if (h === null) {
        // A damaged record: keep what came before it, as after a crash.
        this.damaged = true;
        return n;
      }
      const total = h === undefined ? RECORD_HEADER_BYTES : RECORD_HEADER_BYTES + h.length;
      if (h === undefined || avail < total) {
        if (eof) return n;
        if (total > this.buf.length) this.grow(total);
        eof = await this.fill();
        continue;
      }
      let payload: Buffer = this.buf.subarray(this.start + RECORD_HEADER_BYTES, this.start + total);
      if (this.blocks) {
        const opened = this.opener!.open(this.buf.subarray(this.start, this.start + RECORD_HEADER_BYTES), payload);
        this.start += total;
        if (opened === null) this.rejected++;
        else if (opened.length > 0) {
          this.block = opened;
          this.blockPos = 0;
        }
        continue;
      }
      if (this.opener) {
        const opened = this.opener.open(this.buf.subarray(this.start, this.start + RECORD_HEADER_BYTES), payload);
        if (opened === null) {
          this.start += total;
          this.rejected++;
          continue;
        }
        payload = opened;
      }
      const rec: SpoolRecord = { type: h.type, leg: h.leg, time: h.time, payload };
      this.start += total;
      this.records++;
      n++;
      if (h.type === RecordType.End) this.ended = true;
      const p = onRecord(rec);
      if (p === false) return n;
      if (p instanceof Promise) await p;
    }
  }

  /**
   * Hands the open block's next record to `onRecord` and returns what it returned, or
   * BLOCK_DONE when the block had none left (it is dropped). Records inside an authenticated
   * block that make no sense mean a writer fault: the spool counts as damaged there.
   */
  private nextInBlock(onRecord: RecordHandler): ReturnType<RecordHandler> | typeof BLOCK_DONE {
    const block = this.block!;
    const at = this.blockPos;
    const h = block.length - at >= RECORD_HEADER_BYTES ? readRecordHeader(block, at) : null;
    if (h === null || at + RECORD_HEADER_BYTES + h.length > block.length) {
      if (at < block.length) this.damaged = true;
      this.block = null;
      return BLOCK_DONE;
    }
    this.blockPos = at + RECORD_HEADER_BYTES + h.length;
    if (this.blockPos >= block.length) this.block = null;
    this.records++;
    if (h.type === RecordType.End) this.ended = true;
    return onRecord({ type: h.type, leg: h.leg, time: h.time, payload: block.subarray(at + RECORD_HEADER_BYTES, this.blockPos) });
  }

  /** Closes the file. Idempotent; read() returns nothing afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }

  /** To `need` rounded up to 4 KiB: a sealed block is at most one writer chunk, and the buffer lives as long as the call. */
  private grow(need: number): void {
    const bigger = Buffer.allocUnsafe(Math.ceil(need / 4096) * 4096);
    this.buf.copy(bigger, 0, this.start, this.end);
    this.end -= this.start;
    this.start = 0;
    this.buf = bigger;
  }

  /**
   * Moves the unread bytes to the front and reads more; true when the file had no more. A
   * read of a regular file that returns less than asked has met its end: that is the end for
   * this pass, without one more read to be told so.
   */
  private async fill(): Promise<boolean> {
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    const want = this.buf.length - this.end;
    const bytesRead = this.blocking
      ? readSync(this.fh!.fd, this.buf, this.end, want, this.filePos)
      : (await this.fh!.read(this.buf, this.end, want, this.filePos)).bytesRead;
    this.end += bytesRead;
    this.filePos += bytesRead;
    return bytesRead < want;
  }
}
