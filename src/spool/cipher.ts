/**
 * Sealing of spool records: AES-256-GCM per record under a per-call data key.
 *
 * The data key is random per call. It lives in the capture's memory while the call is
 * recorded and, wrapped by the master key, in the spool's header; it is never written in the
 * clear. Each record is sealed on its own, so a spool cut short by a crash still opens up to
 * its last whole record, and a damaged record is refused alone.
 *
 *   nonce = domain:u32be counter:u64be   (domain 0: records, numbered from 0; 1: the header)
 *   aad   = the record's 16 header bytes (type, leg, length, time)
 *
 * The counter is the record's position in the file, so a record moved, dropped or copied
 * from another place fails authentication. The header check is a GCM tag over nothing with
 * the header's own nonce and the header bytes as AAD: it proves the key before any record
 * is read, so a wrong key is one clean error rather than every record refused.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { TallenneError } from '../errors.js';
import { DATA_KEY_BYTES, newDataKey, type KeyWrapper, type WrappedKey } from '../crypto/keyring.js';

export const SPOOL_CIPHER = 'aes-256-gcm';
export const SPOOL_TAG_BYTES = 16;
/** Upper bound of the sealed header's JSON; a longer claim means a damaged file. */
export const MAX_SEALED_HEADER_BYTES = 16 * 1024;

const DOMAIN_RECORD = 0;
const DOMAIN_HEADER = 1;

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
 * Seals records in file order. The writer calls seal() once per record, after writing the
 * record's header (whose length already counts the tag) into `out`.
 */
export class RecordSealer {
  private counter = 0;
  /** Not a slice of Node's shared pool, which it would keep alive for the life of the call. */
  private readonly nonce = Buffer.alloc(12);

  constructor(private readonly key: Buffer) {}

  /**
   * Encrypts src[start, end) into out after the 16 header bytes at `at`, and the tag after
   * it. Returns the bytes written after the header (payload + tag).
   */
  seal(out: Buffer, at: number, headerBytes: number, src: Buffer, start: number, end: number): number {
    const c = createCipheriv(SPOOL_CIPHER, this.key, nonceFor(DOMAIN_RECORD, this.counter++, this.nonce), { authTagLength: SPOOL_TAG_BYTES });
    c.setAAD(out.subarray(at, at + headerBytes));
    const body = at + headerBytes;
    const n = end > start ? c.update(src.subarray(start, end)).copy(out, body) : 0;
    c.final();
    c.getAuthTag().copy(out, body + n);
    return n + SPOOL_TAG_BYTES;
  }

  /** Overwrites the key: the spool is closed and nothing more is sealed. */
  forget(): void {
    this.key.fill(0);
  }
}

/** Opens records in file order; a record that fails is counted and skipped by the caller. */
export class RecordOpener {
  private counter = 0;
  /** Not a slice of Node's shared pool, which it would keep alive for the life of the call. */
  private readonly nonce = Buffer.alloc(12);

  constructor(private readonly key: Uint8Array) {}

  /** The record's payload, or null when it does not authenticate at its position. */
  open(header: Buffer, sealed: Buffer): Buffer | null {
    const nonce = nonceFor(DOMAIN_RECORD, this.counter++, this.nonce);
    if (sealed.length < SPOOL_TAG_BYTES) return null;
    const split = sealed.length - SPOOL_TAG_BYTES;
    return open(this.key, nonce, header, sealed.subarray(0, split), sealed.subarray(split));
  }
}
