/**
 * Appends records to a call's spool file. The capture path calls appendRtp once per packet:
 * it copies the packet into the current chunk and returns; chunks are written in the
 * background when full or when flush() runs (the SpoolFlusher calls it on a timer), so the
 * cost per packet is one memcpy and no allocation.
 *
 * Given a SpoolKey, the writer seals each chunk as one block (cipher.ts) before it leaves for
 * the kernel: no clear record reaches the disk, and the key is overwritten on close. The
 * records wait in the clear only in the chunk, in the capture's memory, for the 200 ms until
 * the next flush.
 *
 * A write error (ENOSPC, EIO) is fatal for the writer: it keeps what is on disk, stops
 * taking data (the END record too, so the recording is finalised as truncated), and reports
 * the error once through onError.
 */
import { openSync, writeSync, closeSync, write as fsWrite, fsync as fsFsync, close as fsClose } from 'node:fs';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED, writeRecordHeader, type SpoolEnd, type SpoolEvent } from './format.js';
import { BlockSealer, SPOOL_TAG_BYTES, type SpoolKey } from './cipher.js';
import type { RecordingMeta } from '../types.js';

/**
 * A chunk holds the 200 ms between two flushes about twice over for a two-leg G.711 call
 * (3.8 KB at 20 ms packets, 4.3 KB at 10 ms); one that fills up sooner is written at once.
 * A writer keeps its chunk and one spare for the one in flight, so at a thousand calls the
 * chunks are 16 MB of the capture's memory (32 MB at 16 KiB, which bought nothing). A sealed
 * spool's block is at most one chunk.
 */
const CHUNK_BYTES = 8 * 1024;
/** Spare chunks a writer keeps: one, for the chunk it fills while the last one is written. */
const SPARE_CHUNKS = 1;

export class SpoolWriter {
  readonly path: string;
  private fd: number;
  private chunk: Buffer;
  private used = 0;
  /** Chunks handed to the kernel but not yet acknowledged, in order. */
  private inFlight = 0;
  private queue: Buffer[] = [];
  private spare: Buffer[] = [];
  private failed: Error | null = null;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly sealer: BlockSealer | null;
  /** Arrival time of the open block's first record (a sealed spool's block header carries it). */
  private blockTime = 0;
  bytesWritten = 0;
  onError: ((err: Error) => void) | null = null;

  /** `key`: seal every record under this call's data key (the writer takes it over). */
  constructor(path: string, key?: SpoolKey) {
    this.path = path;
    const head = key ? Buffer.concat([SPOOL_MAGIC_SEALED, key.header]) : SPOOL_MAGIC;
    let fd = -1;
    try {
      fd = openSync(path, 'wx', 0o600);
      writeSync(fd, head);
    } catch (e) {
      if (fd >= 0) closeSync(fd);
      key?.key.fill(0);
      throw e;
    }
    this.fd = fd;
    this.bytesWritten = head.length;
    this.sealer = key ? new BlockSealer(key.key) : null;
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  }

  /** True when the records are sealed under a data key. */
  get sealed(): boolean {
    return this.sealer !== null;
  }

  get error(): Error | null {
    return this.failed;
  }

  /** Hot path: one RTP or RTCP packet. */
  appendPacket(type: RecordType.Rtp | RecordType.Rtcp, leg: number, time: number, packet: Buffer, start = 0, end = packet.length): void {
    if (this.failed || this.closed) return;
    this.put(type, leg, time, packet, start, end);
  }

  /**
   * A META snapshot. When no earlier chunk is still being written (always so for the call's
   * first META, at answer), it reaches the kernel before this returns: the 200 OK goes out
   * after it, so a process killed at any moment after the answer leaves a spool that
   * recovery can make a recording of (src/spool/reader.ts `isUnansweredSpool`).
   */
  appendMeta(time: number, meta: RecordingMeta): void {
    if (this.failed || this.closed) return;
    if (this.inFlight > 0 || this.queue.length > 0) {
      this.appendJson(RecordType.Meta, 0, time, meta);
      return;
    }
    this.putJson(RecordType.Meta, 0, time, meta);
    this.sealBlock();
    const buf = this.chunk.subarray(0, this.used);
    try {
      const written = writeSync(this.fd, buf);
      if (written !== buf.length) throw new Error(`short write to spool (${written} of ${buf.length} bytes)`);
      this.bytesWritten += written;
      this.used = 0;
    } catch (e) {
      this.fail(e as Error);
    }
  }

  appendEvent(time: number, event: SpoolEvent, leg = 0): void {
    this.appendJson(RecordType.Event, leg, time, event);
  }

  private appendJson(type: RecordType, leg: number, time: number, value: unknown): void {
    if (this.failed || this.closed) return;
    this.putJson(type, leg, time, value);
    this.flush();
  }

  /** Copies one JSON record into the current chunk. */
  private putJson(type: RecordType, leg: number, time: number, value: unknown): void {
    const body = Buffer.from(JSON.stringify(value), 'utf8');
    this.put(type, leg, time, body, 0, body.length);
  }

  /**
   * Copies one record into the current chunk. In a sealed spool the chunk is one block: its
   * header's 16 bytes are kept free before the first record and its tag's after the last.
   */
  private put(type: RecordType, leg: number, time: number, src: Buffer, start: number, end: number): void {
    const len = end - start;
    const need = RECORD_HEADER_BYTES + len;
    const frame = this.sealer ? (this.used === 0 ? RECORD_HEADER_BYTES : 0) + SPOOL_TAG_BYTES : 0;
    if (this.used + need + frame > this.chunk.length) this.rotate(need + (this.sealer ? RECORD_HEADER_BYTES + SPOOL_TAG_BYTES : 0));
    if (this.sealer && this.used === 0) {
      this.blockTime = time;
      this.used = RECORD_HEADER_BYTES;
    }
    writeRecordHeader(this.chunk, this.used, type, leg, len, time);
    src.copy(this.chunk, this.used + RECORD_HEADER_BYTES, start, end);
    this.used += need;
  }

  private rotate(need: number): void {
    this.flush();
    if (need > this.chunk.length) this.chunk = Buffer.allocUnsafe(need);
  }

  /** A sealed spool's chunk becomes its block: records encrypted in place, header and tag added. */
  private sealBlock(): void {
    if (this.sealer && this.used > 0) this.used = this.sealer.seal(this.chunk, 0, this.used, this.blockTime);
  }

  /** Hands the current chunk to the kernel (asynchronously, in order). */
  flush(): void {
    if (this.used === 0 || this.failed) return;
    this.sealBlock();
    const full = this.chunk.subarray(0, this.used);
    this.queue.push(full);
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
    this.used = 0;
    this.pump();
  }

  private pump(): void {
    if (this.inFlight > 0 || this.queue.length === 0 || this.failed) return;
    const buf = this.queue.shift()!;
    this.inFlight = 1;
    fsWrite(this.fd, buf, 0, buf.length, null, (err, written) => {
      this.inFlight = 0;
      if (err || written !== buf.length) {
        this.fail(err ?? new Error(`short write to spool (${written} of ${buf.length} bytes)`));
      } else {
        this.bytesWritten += written;
        if (buf.buffer.byteLength === CHUNK_BYTES && this.spare.length < SPARE_CHUNKS) this.spare.push(Buffer.from(buf.buffer, buf.byteOffset, CHUNK_BYTES));
      }
      if (this.queue.length > 0 && !this.failed) this.pump();
      else this.wakeDrain();
    });
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.queue = [];
    this.used = 0;
    this.wakeDrain();
    this.onError?.(err);
  }

  private wakeDrain(): void {
    if (this.inFlight === 0 && (this.queue.length === 0 || this.failed)) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves when everything appended so far is with the kernel. */
  drain(): Promise<void> {
    this.flush();
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /**
   * Writes the END record, flushes, fsyncs and closes. Idempotent. The fsync runs on the
   * libuv thread pool: the capture thread ends hundreds of calls a second at scale, and a
   * synchronous fsync per call would stall every other call's packets behind the disk.
   */
  async close(end: SpoolEnd | null): Promise<void> {
    if (this.closed) return;
    if (end) this.appendJson(RecordType.End, 0, end.endedAt, end);
    this.closed = true;
    this.sealer?.forget();
    await this.drain();
    if (!this.failed) {
      const err = await new Promise<Error | null>((r) => fsFsync(this.fd, (e) => r(e)));
      if (err) this.fail(err);
    }
    await new Promise<void>((r) => fsClose(this.fd, () => r()));
  }
}
