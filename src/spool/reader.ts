/**
 * Reads a spool file as a stream of records, in chunks, so memory does not grow with the
 * call's length. A record cut short at the end (crash) ends the stream with `torn = true`.
 * A sealed spool (cipher.ts) needs its data key: each record is authenticated at its
 * position before its payload is handed on, and one that fails is skipped and counted.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { MAX_RECORD_PAYLOAD, RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED } from './format.js';
import { MAX_SEALED_HEADER_BYTES, RecordOpener, SPOOL_TAG_BYTES, checkSpoolKey, parseSealedHeader, spoolKeyContext, type SealedSpoolHeader } from './cipher.js';
import type { KeyWrapper } from '../crypto/keyring.js';
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
  /** Records handed to onRecord. */
  records: number;
  /** Sealed records that failed authentication (tampered, damaged or out of place): skipped. */
  rejected: number;
}

export interface SpoolReadOptions {
  /** The data key of a sealed spool (unwrapped from its header by the key ring). */
  readonly key?: Uint8Array | undefined;
}

/** A spool's version as its first bytes tell it. */
export type SpoolHeader =
  | { readonly sealed: false }
  | { readonly sealed: true; readonly header: SealedSpoolHeader };

/**
 * Reads only the spool's header: whether it is sealed and, if so, its wrapped key. Throws
 * TALLENNE_SPOOL_CORRUPT for a file that is not a spool or whose header is cut short.
 */
export async function readSpoolHeader(path: string): Promise<SpoolHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(SPOOL_MAGIC.length + 4 + MAX_SEALED_HEADER_BYTES + SPOOL_TAG_BYTES);
    let end = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, end, buf.length - end, null);
      if (bytesRead === 0) break;
      end += bytesRead;
    }
    const head = buf.subarray(0, end);
    const magic = head.subarray(0, SPOOL_MAGIC.length);
    if (magic.equals(SPOOL_MAGIC)) return { sealed: false };
    if (!magic.equals(SPOOL_MAGIC_SEALED)) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
    const parsed = parseSealedHeader(head.subarray(SPOOL_MAGIC.length));
    if (parsed === null || parsed === 'short') throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: the sealed spool's header is ${parsed === null ? 'damaged' : 'cut short'}`);
    return { sealed: true, header: parsed.header };
  } finally {
    await fh.close();
  }
}

const READ_BYTES = 256 * 1024;

/**
 * The data key of recording `id`'s spool, unwrapped by the key ring and checked against the
 * header; undefined for a plain spool. The key ring's errors (TALLENNE_KEY_UNKNOWN,
 * TALLENNE_DECRYPT_FAILED) pass through; a key that does not fit is TALLENNE_SPOOL_KEY.
 */
export async function spoolKeyOf(path: string, id: string, keys: KeyWrapper): Promise<Buffer | undefined> {
  const head = await readSpoolHeader(path);
  if (!head.sealed) return undefined;
  const key = keys.unwrap(head.header.wrapped, spoolKeyContext(id));
  checkSpoolKey(head.header, key);
  return key;
}

/**
 * Calls `onRecord` for every complete record in file order. Throws TALLENNE_SPOOL_CORRUPT
 * for a file that is not a spool, and TALLENNE_SPOOL_KEY for a sealed spool read without
 * its key (or with another). A damaged record length ends the stream like a torn tail.
 */
export async function readSpool(path: string, onRecord: (r: SpoolRecord) => void | Promise<void>, opts: SpoolReadOptions = {}): Promise<SpoolReadResult> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.allocUnsafe(READ_BYTES);
    let start = 0;
    let end = 0;
    let eof = false;
    let records = 0;
    let rejected = 0;
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
    const magic = buf.subarray(0, Math.min(end, SPOOL_MAGIC.length));
    let opener: RecordOpener | null = null;
    if (magic.length === SPOOL_MAGIC.length && magic.equals(SPOOL_MAGIC_SEALED)) {
      const parsed = parseSealedHeader(buf.subarray(SPOOL_MAGIC.length, end));
      if (parsed === 'short') return { torn: true, records: 0, rejected: 0 };
      if (parsed === null) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: the sealed spool's header is damaged`);
      if (!opts.key) throw new TallenneError('TALLENNE_SPOOL_KEY', `${path}: the spool is sealed and no key was given`);
      checkSpoolKey(parsed.header, opts.key);
      opener = new RecordOpener(opts.key);
      start = SPOOL_MAGIC.length + parsed.bytes;
    } else if (magic.length === SPOOL_MAGIC.length && magic.equals(SPOOL_MAGIC)) {
      start = SPOOL_MAGIC.length;
    } else {
      if (end === 0) return { torn: true, records: 0, rejected: 0 };
      throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
    }
    const minLength = opener ? SPOOL_TAG_BYTES : 0;
    const maxLength = MAX_RECORD_PAYLOAD + minLength;
    for (;;) {
      if (end - start < RECORD_HEADER_BYTES) {
        if (eof) return { torn: end - start > 0, records, rejected };
        await fill();
        continue;
      }
      const type = buf.readUInt8(start) as RecordType;
      const length = buf.readUInt32LE(start + 4);
      if (type < RecordType.Rtp || type > RecordType.End || length > maxLength || length < minLength) {
        // A damaged record: keep what came before it, as after a crash.
        return { torn: true, records, rejected };
      }
      const total = RECORD_HEADER_BYTES + length;
      if (end - start < total) {
        if (eof) return { torn: true, records, rejected };
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
      let payload: Buffer = buf.subarray(start + RECORD_HEADER_BYTES, start + total);
      if (opener) {
        const opened = opener.open(buf.subarray(start, start + RECORD_HEADER_BYTES), payload);
        if (opened === null) {
          start += total;
          rejected++;
          continue;
        }
        payload = opened;
      }
      const rec: SpoolRecord = {
        type,
        leg: buf.readUInt8(start + 1),
        time: buf.readDoubleLE(start + 8),
        payload,
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
    const head = Buffer.alloc(SPOOL_MAGIC.length + 4 + MAX_SEALED_HEADER_BYTES + SPOOL_TAG_BYTES + RECORD_HEADER_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    const magic = Math.min(n, SPOOL_MAGIC.length);
    const plain = head.subarray(0, magic).equals(SPOOL_MAGIC.subarray(0, magic));
    const sealed = head.subarray(0, magic).equals(SPOOL_MAGIC_SEALED.subarray(0, magic));
    if (!plain && !sealed) return false;
    if (n < SPOOL_MAGIC.length) return true;
    // Where the first record starts: after the magic, and for a sealed spool its key header.
    let first = SPOOL_MAGIC.length;
    if (sealed) {
      const parsed = parseSealedHeader(head.subarray(SPOOL_MAGIC.length, n));
      if (parsed === 'short') return true;
      if (parsed === null) return false;
      first += parsed.bytes;
    }
    if (n < first + RECORD_HEADER_BYTES) return true;
    if (head.readUInt8(first) !== RecordType.Meta) return false;
    return size < first + RECORD_HEADER_BYTES + head.readUInt32LE(first + 4);
  } finally {
    closeSync(fd);
  }
}
