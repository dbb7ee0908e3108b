/**
 * Reads a spool file as a stream of records, in chunks, so memory does not grow with the
 * call's length. A record cut short at the end (crash) ends the stream with `torn = true`.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { MAX_RECORD_PAYLOAD, RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC } from './format.js';
import { TallenneError } from '../errors.js';

export interface SpoolRecord {
  readonly type: RecordType;
  readonly leg: number;
  readonly time: number;
  /** A view into the reader's buffer: valid until the next record is pulled. */
  readonly payload: Buffer;
}

export interface SpoolReadResult {
  /** True when the file ended inside a record (the writer was killed). */
  torn: boolean;
  records: number;
}

const READ_BYTES = 256 * 1024;

/**
 * Calls `onRecord` for every complete record in file order. Throws TALLENNE_SPOOL_CORRUPT
 * for a file that is not a spool or claims an impossible record length.
 */
export async function readSpool(path: string, onRecord: (r: SpoolRecord) => void | Promise<void>): Promise<SpoolReadResult> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_BYTES);
    let start = 0;
    let end = 0;
    let eof = false;
    let records = 0;
    const fill = async (): Promise<void> => {
      if (start > 0) {
        buf.copy(buf, 0, start, end);
        end -= start;
        start = 0;
      }
      while (!eof && end < buf.length) {
        const { bytesRead } = await fh.read(buf, end, buf.length - end, null);
        if (bytesRead === 0) eof = true;
        end += bytesRead;
      }
    };
    await fill();
    if (end < SPOOL_MAGIC.length || !buf.subarray(0, SPOOL_MAGIC.length).equals(SPOOL_MAGIC)) {
      if (end === 0) return { torn: true, records: 0 };
      throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
    }
    start = SPOOL_MAGIC.length;
    for (;;) {
      if (end - start < RECORD_HEADER_BYTES) {
        if (eof) return { torn: end - start > 0, records };
        await fill();
        continue;
      }
      const type = buf.readUInt8(start) as RecordType;
      const length = buf.readUInt32LE(start + 4);
      if (type < RecordType.Rtp || type > RecordType.End || length > MAX_RECORD_PAYLOAD) {
        // A damaged record: keep what came before it, as after a crash.
        return { torn: true, records };
      }
      const total = RECORD_HEADER_BYTES + length;
      if (end - start < total) {
        if (eof) return { torn: true, records };
        if (total > buf.length) {
          const bigger = Buffer.allocUnsafe(total * 2);
          buf.copy(bigger, 0, start, end);
          end -= start;
          start = 0;
          buf = bigger;
        }
        await fill();
        continue;
      }
      const rec: SpoolRecord = {
        type,
        leg: buf.readUInt8(start + 1),
        time: buf.readDoubleLE(start + 8),
        payload: buf.subarray(start + RECORD_HEADER_BYTES, start + total),
      };
      start += total;
      records++;
      const p = onRecord(rec);
      if (p) await p;
    }
  } finally {
    await fh.close();
  }
}

/**
 * True when the file is only the torn beginning of a spool: empty, a part of the magic, or the
 * magic and a part of the first META record. The META reaches the file before the 200 OK is
 * sent (SpoolWriter.appendMeta), so such a spool belongs to a call that was never answered and
 * holds nothing to record. Anything else, damaged or not, is left to the encoder.
 */
export function isUnansweredSpool(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(SPOOL_MAGIC.length + RECORD_HEADER_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    const magic = Math.min(n, SPOOL_MAGIC.length);
    if (!head.subarray(0, magic).equals(SPOOL_MAGIC.subarray(0, magic))) return false;
    if (n < head.length) return true;
    if (head.readUInt8(SPOOL_MAGIC.length) !== RecordType.Meta) return false;
    return size < head.length + head.readUInt32LE(SPOOL_MAGIC.length + 4);
  } finally {
    closeSync(fd);
  }
}
