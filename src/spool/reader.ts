/**
 * Reads a whole spool file as a stream of records, in chunks, so memory does not grow with
 * the call's length: a SpoolFollower (follower.ts) read once to the end of the file. A record
 * cut short at the end (crash) ends the stream with `torn = true`. A sealed spool (cipher.ts)
 * needs its data key: each record is authenticated at its position before its payload is
 * handed on, and one that fails is skipped and counted.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED, SPOOL_MAGIC_SEALED_V2 } from './format.js';
import { MAX_SEALED_HEADER_BYTES, SPOOL_TAG_BYTES, checkSpoolKey, parseSealedHeader, spoolKeyContext, type SealedSpoolHeader } from './cipher.js';
import type { KeyWrapper } from '../crypto/keyring.js';
import { SpoolFollower, type RecordHandler } from './follower.js';
import { TallenneError } from '../errors.js';

export type { SpoolRecord } from './follower.js';

export interface SpoolReadResult {
  /** True when the file ended inside a record (the writer was killed) or at a damaged one. */
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

/** Bytes enough for any spool's magic and sealed header. */
const HEAD_BYTES = SPOOL_MAGIC.length + 4 + MAX_SEALED_HEADER_BYTES + SPOOL_TAG_BYTES;

/**
 * Reads only the spool's header: whether it is sealed and, if so, its wrapped key. Throws
 * TALLENNE_SPOOL_CORRUPT for a file that is not a spool or whose header is cut short.
 */
export async function readSpoolHeader(path: string): Promise<SpoolHeader> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(HEAD_BYTES);
    let end = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, end, buf.length - end, null);
      if (bytesRead === 0) break;
      end += bytesRead;
    }
    return spoolHeaderOf(buf.subarray(0, end), path);
  } finally {
    await fh.close();
  }
}

function spoolHeaderOf(head: Buffer, path: string): SpoolHeader {
  const magic = head.subarray(0, SPOOL_MAGIC.length);
  if (magic.equals(SPOOL_MAGIC)) return { sealed: false };
  if (!magic.equals(SPOOL_MAGIC_SEALED) && !magic.equals(SPOOL_MAGIC_SEALED_V2)) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
  const parsed = parseSealedHeader(head.subarray(SPOOL_MAGIC.length));
  if (parsed === null || parsed === 'short') throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: the sealed spool's header is ${parsed === null ? 'damaged' : 'cut short'}`);
  return { sealed: true, header: parsed.header };
}

/**
 * How many spools in `dir` (live calls, and calls not yet finalised) each master key wraps
 * the key of, by key id. Plain spools and spools whose header is torn or damaged (they need
 * no key) are not counted. What retiring a master key must wait for.
 */
export function spoolKeyUsage(dir: string): Map<string, number> {
  const counts = new Map<string, number>();
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.spool'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return counts;
    throw e;
  }
  const buf = Buffer.alloc(HEAD_BYTES);
  for (const name of names) {
    let fd: number;
    try {
      fd = openSync(join(dir, name), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // finalised meanwhile
      throw e;
    }
    try {
      const head = spoolHeaderOf(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)), name);
      if (head.sealed) counts.set(head.header.wrapped.keyId, (counts.get(head.header.wrapped.keyId) ?? 0) + 1);
    } catch (e) {
      if (!(e instanceof TallenneError)) throw e;
    } finally {
      closeSync(fd);
    }
  }
  return counts;
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
export async function readSpool(path: string, onRecord: RecordHandler, opts: SpoolReadOptions = {}): Promise<SpoolReadResult> {
  const f = new SpoolFollower(path, { bufferBytes: READ_BYTES, key: opts.key });
  try {
    const records = await f.read(onRecord);
    if (!f.isSpool) {
      // Empty, or a sealed spool cut inside its key header: a spool torn before its first record.
      if (f.partialBytes === 0 || f.headerCut) return { torn: true, records: 0, rejected: 0 };
      throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
    }
    return { torn: f.damaged || f.partialBytes > 0, records, rejected: f.rejected };
  } finally {
    await f.close();
  }
}

/**
 * True when the file is only the torn beginning of a spool: empty, a part of the magic, or the
 * magic and a part of the first META record. The META reaches the file before the 200 OK is
 * sent (SpoolWriter.appendMeta), so such a spool belongs to a call that was never answered and
 * holds nothing to record. In a version 3 sealed spool the META is sealed in the first block,
 * written on its own at the answer: a cut inside that block is the same. Anything else,
 * damaged or not, is left to the encoder.
 */
export function isUnansweredSpool(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEAD_BYTES + RECORD_HEADER_BYTES);
    const n = readSync(fd, head, 0, head.length, 0);
    const magic = Math.min(n, SPOOL_MAGIC.length);
    const plain = head.subarray(0, magic).equals(SPOOL_MAGIC.subarray(0, magic));
    const v3 = head.subarray(0, magic).equals(SPOOL_MAGIC_SEALED.subarray(0, magic));
    const v2 = head.subarray(0, magic).equals(SPOOL_MAGIC_SEALED_V2.subarray(0, magic));
    const sealed = v3 || v2;
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
    if (head.readUInt8(first) !== (v3 ? RecordType.Sealed : RecordType.Meta)) return false;
    return size < first + RECORD_HEADER_BYTES + head.readUInt32LE(first + 4);
  } finally {
    closeSync(fd);
  }
}
