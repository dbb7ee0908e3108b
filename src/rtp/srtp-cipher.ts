/**
 * The cryptographic transforms of SRTP, over node:crypto: the AES counter-mode keystream
 * (RFC 3711 §4.1.1), the key derivation built on it (§4.3), HMAC-SHA1 tags (§4.2) and
 * AES-GCM sealing and opening (RFC 7714 §5). No packet layout here: srtp.ts says which
 * bytes are header, payload, MKI and tag.
 */
import { createCipheriv, createDecipheriv, createHmac, type Cipher } from 'node:crypto';

const BLOCK = 16;

/**
 * AES in counter mode with a fixed key. The counter blocks are encrypted in ECB by one
 * cipher object made once per session key, so a packet costs one `update` call and an
 * XOR in place, not a new cipher object. In every SRTP use the low 16 bits of the
 * initial counter are zero (the IV is the salt and index shifted left by 16), so block i
 * of the keystream is the IV with i in its last two bytes.
 */
export class AesCmKeystream {
  private readonly ecb: Cipher;
  private counters: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 16 && key.length !== 32) throw new RangeError('AES-CM key must be 128 or 256 bits');
    this.ecb = createCipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
    this.ecb.setAutoPadding(false);
    this.counters = Buffer.alloc(BLOCK * 96);
  }

  /** XORs the keystream that starts at counter block `iv` into data[start, end). */
  xor(iv: Buffer, data: Buffer, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    const blocks = Math.ceil(n / BLOCK);
    if (blocks > 0x10000) throw new RangeError('AES-CM segment longer than 2^16 blocks');
    if (this.counters.length < blocks * BLOCK) this.counters = Buffer.alloc(blocks * BLOCK);
    const c = this.counters;
    for (let b = 0; b < blocks; b++) {
      const o = b * BLOCK;
      iv.copy(c, o, 0, 14);
      c[o + 14] = b >>> 8;
      c[o + 15] = b & 0xff;
    }
    const ks = this.ecb.update(c.subarray(0, blocks * BLOCK));
    for (let i = 0; i < n; i++) data[start + i]! ^= ks[i]!;
  }
}

/**
 * XORs a 48-bit big-endian value into buf[at, at + 6): the packet index into an AES-CM IV,
 * or r into the key derivation's. A double holds 48 bits exactly.
 */
export function xorUint48(buf: Buffer, at: number, value: number): void {
  const hi = Math.floor(value / 0x100000000);
  const lo = value >>> 0;
  buf[at]! ^= (hi >>> 8) & 0xff;
  buf[at + 1]! ^= hi & 0xff;
  buf[at + 2]! ^= lo >>> 24;
  buf[at + 3]! ^= (lo >>> 16) & 0xff;
  buf[at + 4]! ^= (lo >>> 8) & 0xff;
  buf[at + 5]! ^= lo & 0xff;
}

/** Key derivation labels, RFC 3711 §4.3.1 and §4.3.2. */
export const KDF_LABEL = {
  srtpEncryption: 0,
  srtpAuth: 1,
  srtpSalt: 2,
  srtcpEncryption: 3,
  srtcpAuth: 4,
  srtcpSalt: 5,
} as const;

/**
 * RFC 3711 §4.3.1: `bytes` octets of PRF output for `label` at r = index DIV kdr. The
 * master salt is used as 112 bits; a 96-bit AEAD salt (RFC 7714 §11) is padded with
 * zero octets on the right, as libsrtp does, so peers derive the same keys.
 */
export function deriveSessionKey(prf: AesCmKeystream, masterSalt: Buffer, label: number, r: number, bytes: number): Buffer {
  const iv = Buffer.alloc(BLOCK);
  masterSalt.copy(iv, 0, 0, Math.min(14, masterSalt.length));
  // key_id = label || r (8 + 48 bits), right-aligned against the 112-bit salt.
  iv[7]! ^= label;
  xorUint48(iv, 8, r);
  const out = Buffer.alloc(bytes);
  prf.xor(iv, out, 0, bytes);
  return out;
}

/** HMAC-SHA1 over data[start, end) followed by the 32-bit `trailer` (the ROC for SRTP). */
export function hmacSha1(key: Buffer, data: Buffer, start: number, end: number, trailer: number | null): Buffer {
  const h = createHmac('sha1', key).update(data.subarray(start, end));
  if (trailer !== null) {
    const t = Buffer.allocUnsafe(4);
    t.writeUInt32BE(trailer >>> 0, 0);
    h.update(t);
  }
  return h.digest();
}

/** Compares the first `bytes` octets of `expected` with buf[at, at + bytes) without an early exit. */
export function tagsEqual(expected: Buffer, buf: Buffer, at: number, bytes: number): boolean {
  let diff = 0;
  for (let i = 0; i < bytes; i++) diff |= expected[i]! ^ buf[at + i]!;
  return diff === 0;
}

/**
 * AES-GCM seal: encrypts `plain` (may be empty) with the associated data given in parts,
 * returns ciphertext || 16-octet tag.
 */
export function gcmSeal(key: Buffer, iv: Buffer, aad: readonly Buffer[], plain: Buffer): Buffer {
  const c = createCipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, iv);
  for (const a of aad) c.setAAD(a);
  const body = c.update(plain);
  c.final();
  return Buffer.concat([body, c.getAuthTag()]);
}

/**
 * AES-GCM open: checks the tag over the associated data and ciphertext and returns the
 * plaintext, or null when the tag does not verify. Nothing is written anywhere before the
 * tag has been checked; the caller copies the plaintext into place after.
 */
export function gcmOpen(key: Buffer, iv: Buffer, aad: readonly Buffer[], ciphertext: Buffer, tag: Buffer): Buffer | null {
  const d = createDecipheriv(key.length === 16 ? 'aes-128-gcm' : 'aes-256-gcm', key, iv, { authTagLength: 16 });
  for (const a of aad) d.setAAD(a);
  d.setAuthTag(tag);
  const plain = d.update(ciphertext);
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}
