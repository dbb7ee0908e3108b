/**
 * Sealing of spool records: AES-256-GCM under a per-call data key.
 *
 * The data key is random per call. It lives in the capture's memory while the call is
 * recorded and, wrapped by the master key, in the spool's header; it is never written in the
 * clear.
 *
 * Version 3 (the writer's): records are sealed in blocks, one block per write the capture
 * hands to the kernel (every 200 ms or so of a call, SpoolWriter.flush). A block is framed as
 * a record of type Sealed whose payload is the ciphertext of the plain records it holds and
 * its tag:
 *
 *   nonce = domain:u32be counter:u64be   (domain 2: blocks, numbered from 0; 1: the header)
 *   aad   = the block's 16 header bytes (type, leg 0, length, time of its first record)
 *
 * One cipher per block rather than per packet: AES-GCM's set-up, not its bytes, was the
 * capture thread's largest cost at a thousand calls. A spool cut short by a crash still
 * opens up to its last whole block, which is what had reached the kernel anyway.
 *
 * Version 2 (read only, spools of an older daemon): each record sealed on its own, nonce
 * domain 0 numbered by record, its own header as the associated data.
 *
 * The counter is the block's (or record's) position in the file, so one moved, dropped or
 * copied from another place fails authentication. The header check is a GCM tag over
 * nothing with the header's own nonce and the header bytes as AAD: it proves the key before
 * any record is read, so a wrong key is one clean error rather than every block refused.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { TallenneError } from '../errors.js';
import { RECORD_HEADER_BYTES, RecordType, writeRecordHeader } from './format.js';
import { DATA_KEY_BYTES, newDataKey, type KeyWrapper, type WrappedKey } from '../crypto/keyring.js';

export const SPOOL_CIPHER = 'aes-256-gcm';
export const SPOOL_TAG_BYTES = 16;
/** Upper bound of the sealed header's JSON; a longer claim means a damaged file. */
export const MAX_SEALED_HEADER_BYTES = 16 * 1024;

const DOMAIN_RECORD = 0;
const DOMAIN_HEADER = 1;
const DOMAIN_BLOCK = 2;

/** A fresh call's key and the header that carries it wrapped. The writer owns both. */
export interface SpoolKey {
  readonly key: Buffer;
  /** hlen:u32le header-json[hlen] check[16], written right after the magic. */
  readonly header: Buffer;
}

/**
 * The context a spool's key is wrapped under (the key ring binds it into the wrapping), so
 * a header copied onto another call's spool does not unwrap.
 */
export function spoolKeyContext(id: string): string {
  return `spool:${id}`;
}

/** Draws a call's data key and wraps it under the current master key for the header. */
export function newSpoolKey(wrapper: KeyWrapper, id: string): SpoolKey {
  const { key, wrapped } = newDataKey(wrapper, spoolKeyContext(id));
  const json = Buffer.from(JSON.stringify({ cipher: SPOOL_CIPHER, key: wrapped }), 'utf8');
  const header = Buffer.allocUnsafe(4 + json.length + SPOOL_TAG_BYTES);
  header.writeUInt32LE(json.length, 0);
  json.copy(header, 4);
  headerCheck(key, json).copy(header, 4 + json.length);
  return { key, header };
}

/** The parsed header of a sealed spool. */
export interface SealedSpoolHeader {
  readonly wrapped: WrappedKey;
  /** The header's JSON bytes and check tag, for checkSpoolKey. */
  readonly json: Buffer;
  readonly check: Buffer;
}

/**
 * Parses the header bytes after the magic: the header, 'short' when the buffer ends before
 * it does (a spool torn while it was created), or null when it is not a header.
 */
export function parseSealedHeader(buf: Buffer): { header: SealedSpoolHeader; bytes: number } | 'short' | null {
  if (buf.length < 4) return 'short';
  const hlen = buf.readUInt32LE(0);
  if (hlen === 0 || hlen > MAX_SEALED_HEADER_BYTES) return null;
  const bytes = 4 + hlen + SPOOL_TAG_BYTES;
  if (buf.length < bytes) return 'short';
  const json = buf.subarray(4, 4 + hlen);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    return null;
  }
  const p = parsed as { cipher?: unknown; key?: Partial<Record<keyof WrappedKey, unknown>> | null };
  if (typeof parsed !== 'object' || parsed === null || p.cipher !== SPOOL_CIPHER || typeof p.key !== 'object' || p.key === null) return null;
  const { keyId, iv, data } = p.key;
  if (typeof keyId !== 'string' || typeof iv !== 'string' || typeof data !== 'string') return null;
  return { header: { wrapped: { keyId, iv, data }, json: Buffer.from(json), check: Buffer.from(buf.subarray(4 + hlen, bytes)) }, bytes };
}

/** Throws TALLENNE_SPOOL_KEY unless `key` is the key the header was sealed with. */
export function checkSpoolKey(header: SealedSpoolHeader, key: Uint8Array): void {
  if (key.length !== DATA_KEY_BYTES || !open(key, nonceFor(DOMAIN_HEADER, 0), header.json, EMPTY, header.check)) {
    throw new TallenneError('TALLENNE_SPOOL_KEY', 'the key does not open this spool');
  }
}

const EMPTY = Buffer.alloc(0);

function headerCheck(key: Uint8Array, json: Buffer): Buffer {
  const c = createCipheriv(SPOOL_CIPHER, key, nonceFor(DOMAIN_HEADER, 0), { authTagLength: SPOOL_TAG_BYTES });
  c.setAAD(json);
  c.final();
  return c.getAuthTag();
}

function nonceFor(domain: number, counter: number, into = Buffer.allocUnsafe(12)): Buffer {
  into.writeUInt32BE(domain, 0);
  into.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
  into.writeUInt32BE(counter >>> 0, 8);
  return into;
}

/** Ciphertext followed by its tag → the plain bytes, or null when it does not authenticate. */
function openAt(key: Uint8Array, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer | null {
  if (sealed.length < SPOOL_TAG_BYTES) return null;
  const split = sealed.length - SPOOL_TAG_BYTES;
  return open(key, nonce, aad, sealed.subarray(0, split), sealed.subarray(split));
}

/** Decrypts and authenticates; null when the tag does not verify. */
function open(key: Uint8Array, nonce: Buffer, aad: Buffer, sealed: Buffer, tag: Buffer): Buffer | null {
  const d = createDecipheriv(SPOOL_CIPHER, key, nonce, { authTagLength: SPOOL_TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(tag);
  const plain = sealed.length > 0 ? d.update(sealed) : EMPTY;
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}

/**
 * Seals a spool's blocks in file order (version 3). The writer gathers plain records after
 * a 16-byte gap, then calls seal() once when it hands the block to the kernel.
 */
export class BlockSealer {
  private counter = 0;
  /** Not a slice of Node's shared pool, which it would keep alive for the life of the call. */
  private readonly nonce = Buffer.alloc(12);

  constructor(private readonly key: Buffer) {}

  /**
   * Seals the plain records in buf[at + RECORD_HEADER_BYTES, end) in place, writes the tag
   * after them and the block's header at `at` (its time: `time`). Returns the block's end.
   */
  seal(buf: Buffer, at: number, end: number, time: number): number {
    const body = at + RECORD_HEADER_BYTES;
    writeRecordHeader(buf, at, RecordType.Sealed, 0, end - body + SPOOL_TAG_BYTES, time);
    const c = createCipheriv(SPOOL_CIPHER, this.key, nonceFor(DOMAIN_BLOCK, this.counter++, this.nonce), { authTagLength: SPOOL_TAG_BYTES });
    c.setAAD(buf.subarray(at, body));
    c.update(buf.subarray(body, end)).copy(buf, body);
    c.final();
    c.getAuthTag().copy(buf, end);
    return end + SPOOL_TAG_BYTES;
  }

  /** Overwrites the key: the spool is closed and nothing more is sealed. */
  forget(): void {
    this.key.fill(0);
  }
}

/**
 * Opens a sealed spool's blocks (version 3) or records (version 2) in file order: each at the
 * next position of its own nonce domain. One that fails is counted and skipped by the caller.
 */
export class SpoolOpener {
  private counter = 0;
  /** Not a slice of Node's shared pool, which it would keep alive for the life of the call. */
  private readonly nonce = Buffer.alloc(12);
  private readonly domain: number;

  constructor(private readonly key: Uint8Array, version: 2 | 3) {
    this.domain = version === 3 ? DOMAIN_BLOCK : DOMAIN_RECORD;
  }

  /** The block's plain records (a version 2 record's payload), or null when it does not authenticate at its position. */
  open(header: Buffer, sealed: Buffer): Buffer | null {
    return openAt(this.key, nonceFor(this.domain, this.counter++, this.nonce), header, sealed);
  }
}
