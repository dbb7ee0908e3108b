/**
 * SRTP and SRTCP (RFC 3711) for one direction of one media stream keyed by SDES: the
 * packet layouts of the AES-CM/HMAC-SHA1 suites and of AEAD AES-GCM (RFC 7714), per-SSRC
 * rollover counters and replay windows, MKIs, key lifetimes, the key derivation rate, and
 * the RFC 4568 session parameters UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP and
 * UNAUTHENTICATED_SRTP.
 *
 * The receive side (`unprotectRtp`, `unprotectRtcp`) is on the capture path: it never
 * throws, authenticates every packet before anything is decrypted, decrypts in place, and
 * returns a view of the caller's buffer holding the plain packet (header included, so the
 * existing RTP/RTCP parsers read it unchanged). Failures are shared constant objects with
 * a stable reason, meant as metric label values. Nothing is allocated beyond what
 * node:crypto itself allocates per call.
 *
 * The protect side (`protectRtp`, `protectRtcp`) makes new buffers; it serves tests and
 * the test sender, not the recorder.
 *
 * Receive state for a new SSRC is created only once its first packet has authenticated,
 * so forged packets cannot fill the per-SSRC table. Under UNAUTHENTICATED_SRTP nothing
 * authenticates RTP (the offerer chose that): the rollover and replay logic still run.
 *
 * Key material is held in closures and private fields only; no method, error or
 * `toString` exposes it.
 */
import { AesCmKeystream, deriveSessionKey, gcmOpen, gcmSeal, hmacSha1, KDF_LABEL, tagsEqual, xorUint48 } from './srtp-cipher.js';
import { DEFAULT_REPLAY_WINDOW, guessRoc, ReplayWindow } from './srtp-replay.js';
import { SRTP_SUITES, type SrtpSuite, type SrtpSuiteName } from './srtp-suites.js';
import { rtpHeaderLength } from './packet.js';

/** Why an SRTP or SRTCP packet was dropped. Stable strings: metric label values. */
export type SrtpDropReason =
  | 'too_short'
  | 'bad_version'
  | 'bad_header'
  | 'bad_mki'
  | 'auth_failed'
  | 'replayed'
  | 'key_expired';

export const SRTP_DROP_REASONS: readonly SrtpDropReason[] = [
  'too_short', 'bad_version', 'bad_header', 'bad_mki', 'auth_failed', 'replayed', 'key_expired',
];

export type SrtpResult =
  | { readonly ok: true; readonly packet: Buffer }
  | { readonly ok: false; readonly reason: SrtpDropReason };

const FAIL: Readonly<Record<SrtpDropReason, SrtpResult>> = Object.freeze(
  Object.fromEntries(SRTP_DROP_REASONS.map((reason) => [reason, Object.freeze({ ok: false, reason })])) as Record<
    SrtpDropReason,
    SrtpResult
  >,
);

/** One master key as SDES carries it (RFC 4568 §6.1): key, salt, optional MKI and lifetime. */
export interface SrtpMasterKey {
  key: Buffer;
  salt: Buffer;
  /** The MKI value, `mkiLength` octets, when the session uses MKIs. */
  mki?: Buffer;
  /** Packets this key may protect, per direction and per SRTP/SRTCP; the suite's maximum when absent. */
  lifetime?: number;
}

export interface SrtpPolicy {
  suite: SrtpSuiteName;
  /** One key, or several told apart by their MKIs. */
  keys: readonly SrtpMasterKey[];
  /** Octets of MKI on every packet: 0 (none) or the length of each key's `mki`. */
  mkiLength?: number;
  /** RFC 3711 §4.3.1 key derivation rate: 0 (derive once) or a power of two up to 2^24. */
  keyDerivationRate?: number;
  unencryptedSrtp?: boolean;
  unencryptedSrtcp?: boolean;
  unauthenticatedSrtp?: boolean;
  /** Replay window in packets, 64..32768; 128 when absent. */
  replayWindow?: number;
  /** SSRCs tracked at once; the least recently added is forgotten beyond it. */
  maxSources?: number;
}

/** Session keys for one of SRTP or SRTCP, as the key derivation makes them. */
export interface SrtpSessionKeys {
  key: Buffer;
  salt: Buffer;
  /** HMAC-SHA1 key of the CM suites; empty for AEAD. */
  auth: Buffer;
}

const DEFAULT_MAX_SOURCES = 16;
const RTP_HEADER = 12;
const RTCP_HEADER = 8;
const GCM_TAG = 16;
const SRTCP_INDEX_BYTES = 4;
const SRTCP_MAX_INDEX = 0x7fffffff;
const EMPTY = Buffer.alloc(0);

interface DerivedKeys {
  r: number;
  key: Buffer;
  salt: Buffer;
  auth: Buffer;
  cm: AesCmKeystream | null;
}

/** Where session keys come from: a master key through the KDF, or fixed keys (test vectors). */
type KeySchedule = (rtcp: boolean, r: number) => DerivedKeys;

class MasterKeyState {
  readonly mki: Buffer | null;
  readonly lifetime: number;
  srtpUsed = 0;
  srtcpUsed = 0;
  private rtp: DerivedKeys | null = null;
  private rtcp: DerivedKeys | null = null;

  constructor(private readonly schedule: KeySchedule, mki: Buffer | null, lifetime: number) {
    this.mki = mki;
    this.lifetime = lifetime;
  }

  session(rtcp: boolean, r: number): DerivedKeys {
    const cached = rtcp ? this.rtcp : this.rtp;
    if (cached !== null && cached.r === r) return cached;
    const fresh = this.schedule(rtcp, r);
    if (rtcp) this.rtcp = fresh;
    else this.rtp = fresh;
    return fresh;
  }
}

function withCipher(suite: SrtpSuite, r: number, k: SrtpSessionKeys): DerivedKeys {
  return { r, key: k.key, salt: k.salt, auth: k.auth, cm: suite.transform === 'cm' ? new AesCmKeystream(k.key) : null };
}

function masterSchedule(suite: SrtpSuite, master: SrtpMasterKey): KeySchedule {
  const prf = new AesCmKeystream(master.key);
  const salt = Buffer.from(master.salt);
  return (rtcp, r) => {
    const base = rtcp ? KDF_LABEL.srtcpEncryption : KDF_LABEL.srtpEncryption;
    return withCipher(suite, r, {
      key: deriveSessionKey(prf, salt, base, r, suite.keyBytes),
      auth: suite.authKeyBytes > 0 ? deriveSessionKey(prf, salt, base + 1, r, suite.authKeyBytes) : EMPTY,
      salt: deriveSessionKey(prf, salt, base + 2, r, suite.saltBytes),
    });
  };
}

interface RtpSourceIn {
  roc: number;
  /** Highest sequence number authenticated under `roc` (s_l in RFC 3711). */
  sl: number;
  window: ReplayWindow;
}

interface RtpSourceOut {
  roc: number;
  lastSeq: number;
}

function checkPolicy(p: SrtpPolicy, suite: SrtpSuite, mkiLength: number): void {
  if (p.keys.length === 0) throw new RangeError('SRTP policy has no key');
  if (!Number.isInteger(mkiLength) || mkiLength < 0 || mkiLength > 128) throw new RangeError('SRTP MKI length must be 0..128');
  if (p.keys.length > 1 && mkiLength === 0) throw new RangeError('several SRTP keys need an MKI');
  for (const k of p.keys) {
    if (k.key.length !== suite.keyBytes || k.salt.length !== suite.saltBytes) {
      throw new RangeError(`SRTP key or salt length does not fit ${suite.name}`);
    }
    if ((k.mki?.length ?? 0) !== mkiLength) throw new RangeError('SRTP MKI value length differs from the MKI length');
    if (k.lifetime !== undefined && !(Number.isInteger(k.lifetime) && k.lifetime > 0 && k.lifetime <= suite.maxLifetime)) {
      throw new RangeError('SRTP key lifetime out of range');
    }
  }
  const kdr = p.keyDerivationRate ?? 0;
  if (!(kdr === 0 || (Number.isInteger(Math.log2(kdr)) && kdr <= 2 ** 24))) {
    throw new RangeError('SRTP key derivation rate must be 0 or a power of two up to 2^24');
  }
  if (suite.transform === 'gcm' && p.unauthenticatedSrtp) throw new RangeError('AEAD suites cannot be unauthenticated');
}

export class SrtpSession {
  readonly suite: SrtpSuite;
  private readonly keys: readonly MasterKeyState[];
  private readonly mkiLength: number;
  private readonly kdr: number;
  private readonly encryptRtp: boolean;
  private readonly encryptRtcp: boolean;
  private readonly srtpTag: number;
  private readonly windowSize: number;
  private readonly maxSources: number;
  private readonly rtpIn = new Map<number, RtpSourceIn>();
  private readonly rtcpIn = new Map<number, ReplayWindow>();
  private readonly rtpOut = new Map<number, RtpSourceOut>();
  private readonly rtcpOut = new Map<number, number>();
  /** Scratch IVs, rewritten for every packet. */
  private readonly iv16 = Buffer.alloc(16);
  private readonly iv12 = Buffer.alloc(12);

  /**
   * Keys are copied: the caller may wipe its buffers after. `schedule` is for
   * `withSessionKeys` only (its type is not exported).
   */
  constructor(policy: SrtpPolicy, schedule?: MasterKeyState) {
    const suite = SRTP_SUITES[policy.suite];
    if (suite === undefined) throw new RangeError('unknown SRTP suite');
    const mkiLength = policy.mkiLength ?? 0;
    checkPolicy(policy, suite, mkiLength);
    this.suite = suite;
    this.mkiLength = mkiLength;
    this.kdr = policy.keyDerivationRate ?? 0;
    this.encryptRtp = !policy.unencryptedSrtp;
    this.encryptRtcp = !policy.unencryptedSrtcp;
    this.srtpTag = policy.unauthenticatedSrtp ? 0 : suite.srtpTagBytes;
    this.windowSize = policy.replayWindow ?? DEFAULT_REPLAY_WINDOW;
    new ReplayWindow(this.windowSize); // validates the size once, here
    this.maxSources = policy.maxSources ?? DEFAULT_MAX_SOURCES;
    this.keys = schedule !== undefined ? [schedule] : policy.keys.map(
      (k) => new MasterKeyState(
        masterSchedule(suite, { key: Buffer.from(k.key), salt: k.salt }),
        k.mki ? Buffer.from(k.mki) : null,
        k.lifetime ?? suite.maxLifetime,
      ),
    );
  }

  /**
   * A session over already derived session keys, no MKI: what the RFC 7714 test vectors
   * give. Key derivation and lifetimes do not apply.
   */
  static withSessionKeys(
    policy: Omit<SrtpPolicy, 'keys' | 'mkiLength' | 'keyDerivationRate'>,
    rtp: SrtpSessionKeys,
    rtcp: SrtpSessionKeys,
  ): SrtpSession {
    const suite = SRTP_SUITES[policy.suite];
    const fixedRtp = withCipher(suite, 0, rtp);
    const fixedRtcp = withCipher(suite, 0, rtcp);
    const schedule = new MasterKeyState((isRtcp) => (isRtcp ? fixedRtcp : fixedRtp), null, suite.maxLifetime);
    // The placeholder master key only satisfies the policy check; `schedule` replaces it.
    const placeholder = { key: Buffer.alloc(suite.keyBytes), salt: Buffer.alloc(suite.saltBytes) };
    return new SrtpSession({ ...policy, keys: [placeholder] }, schedule);
  }

  toString(): string {
    return `SrtpSession(${this.suite.name})`;
  }

  toJSON(): { suite: SrtpSuiteName } {
    return { suite: this.suite.name };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** SSRCs with receive state, for tests and diagnostics. */
  get sources(): number {
    return this.rtpIn.size;
  }

  private keyForMki(buf: Buffer, at: number): MasterKeyState | null {
    if (this.mkiLength === 0) return this.keys[0]!;
    for (const k of this.keys) {
      if (k.mki!.compare(buf, at, at + this.mkiLength) === 0) return k;
    }
    return null;
  }

  private rederive(index: number): number {
    return this.kdr === 0 ? 0 : Math.floor(index / this.kdr);
  }

  /** RFC 3711 §4.1.1: (salt << 16) XOR (SSRC << 64) XOR (index << 16). */
  private cmIv(salt: Buffer, ssrc: number, index: number): Buffer {
    const iv = this.iv16;
    salt.copy(iv, 0, 0, 14);
    iv[14] = 0;
    iv[15] = 0;
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    xorUint48(iv, 8, index);
    return iv;
  }

  /** RFC 7714 §8.1 and §9.1: 00 00 || SSRC || 32 bits || 16 bits, XOR the salt. */
  private gcmIv(salt: Buffer, ssrc: number, hi32: number, lo16: number): Buffer {
    const iv = this.iv12;
    iv[0] = 0;
    iv[1] = 0;
    iv.writeUInt32BE(ssrc >>> 0, 2);
    iv.writeUInt32BE(hi32 >>> 0, 6);
    iv.writeUInt16BE(lo16 & 0xffff, 10);
    for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!;
    return iv;
  }

  /** Checks and decrypts one SRTP packet in place; see the module comment. */
  unprotectRtp(buf: Buffer): SrtpResult {
    const len = buf.length;
    const gcm = this.suite.transform === 'gcm';
    const tag = this.srtpTag;
    const mki = this.mkiLength;
    if (len < RTP_HEADER + tag + mki) return FAIL.too_short;
    if (buf[0]! >>> 6 !== 2) return FAIL.bad_version;
    // CM: header | payload | MKI | tag.  GCM: header | ciphertext | tag | MKI.
    const bodyEnd = len - tag - mki;
    const mkiAt = gcm ? len - mki : bodyEnd;
    const tagAt = gcm ? bodyEnd : len - tag;
    const hdr = rtpHeaderLength(buf, bodyEnd);
    if (hdr < 0) return FAIL.bad_header;
    const key = this.keyForMki(buf, mkiAt);
    if (key === null) return FAIL.bad_mki;

    const seq = buf.readUInt16BE(2);
    const ssrc = buf.readUInt32BE(8);
    const src = this.rtpIn.get(ssrc);
    let v = 0;
    if (src !== undefined) {
      v = guessRoc(src.roc, src.sl, seq);
      if (v < 0 || !src.window.check(v * 0x10000 + seq)) return FAIL.replayed;
    }
    const index = v * 0x10000 + seq;
    if (key.srtpUsed >= key.lifetime || index >= this.suite.maxLifetime) return FAIL.key_expired;
    const sk = key.session(false, this.rederive(index));

    if (gcm) {
      const iv = this.gcmIv(sk.salt, ssrc, v, seq);
      const tagView = buf.subarray(tagAt, tagAt + GCM_TAG);
      if (this.encryptRtp) {
        const plain = gcmOpen(sk.key, iv, [buf.subarray(0, hdr)], buf.subarray(hdr, bodyEnd), tagView);
        if (plain === null) return FAIL.auth_failed;
        plain.copy(buf, hdr);
      } else if (gcmOpen(sk.key, iv, [buf.subarray(0, bodyEnd)], EMPTY, tagView) === null) {
        return FAIL.auth_failed;
      }
    } else {
      if (tag > 0 && !tagsEqual(hmacSha1(sk.auth, buf, 0, bodyEnd, v), buf, tagAt, tag)) return FAIL.auth_failed;
      if (this.encryptRtp) sk.cm!.xor(this.cmIv(sk.salt, ssrc, index), buf, hdr, bodyEnd);
    }

    if (src !== undefined) {
      if (v === src.roc) {
        if (seq > src.sl) src.sl = seq;
      } else if (v === src.roc + 1) {
        src.roc = v;
        src.sl = seq;
      }
      src.window.accept(index);
    } else {
      const fresh: RtpSourceIn = { roc: 0, sl: seq, window: new ReplayWindow(this.windowSize) };
      fresh.window.accept(index);
      this.remember(this.rtpIn, ssrc, fresh);
    }
    key.srtpUsed++;
    return { ok: true, packet: buf.subarray(0, bodyEnd) };
  }

  /** Checks and decrypts one SRTCP packet (a whole compound packet) in place. */
  unprotectRtcp(buf: Buffer): SrtpResult {
    const len = buf.length;
    const gcm = this.suite.transform === 'gcm';
    const tag = this.suite.srtcpTagBytes;
    const mki = this.mkiLength;
    if (len < RTCP_HEADER + SRTCP_INDEX_BYTES + tag + mki) return FAIL.too_short;
    if (buf[0]! >>> 6 !== 2) return FAIL.bad_version;
    // CM: header | payload | E+index | MKI | tag.  GCM: header | ciphertext | tag | E+index | MKI.
    const mkiAt = gcm ? len - mki : len - tag - mki;
    const indexAt = mkiAt - SRTCP_INDEX_BYTES;
    const tagAt = gcm ? indexAt - GCM_TAG : len - tag;
    const bodyEnd = gcm ? tagAt : indexAt;
    const key = this.keyForMki(buf, mkiAt);
    if (key === null) return FAIL.bad_mki;

    const word = buf.readUInt32BE(indexAt);
    const encrypted = word >>> 31 === 1;
    const index = word & SRTCP_MAX_INDEX;
    const ssrc = buf.readUInt32BE(4);
    const window = this.rtcpIn.get(ssrc);
    if (window !== undefined && !window.check(index)) return FAIL.replayed;
    if (key.srtcpUsed >= Math.min(key.lifetime, SRTCP_MAX_INDEX)) return FAIL.key_expired;
    const sk = key.session(true, this.rederive(index));

    if (gcm) {
      const iv = this.gcmIv(sk.salt, ssrc, index >>> 16, index & 0xffff);
      const indexView = buf.subarray(indexAt, indexAt + SRTCP_INDEX_BYTES);
      const tagView = buf.subarray(tagAt, tagAt + GCM_TAG);
      if (encrypted) {
        const plain = gcmOpen(sk.key, iv, [buf.subarray(0, RTCP_HEADER), indexView], buf.subarray(RTCP_HEADER, bodyEnd), tagView);
        if (plain === null) return FAIL.auth_failed;
        plain.copy(buf, RTCP_HEADER);
      } else if (gcmOpen(sk.key, iv, [buf.subarray(0, bodyEnd), indexView], EMPTY, tagView) === null) {
        return FAIL.auth_failed;
      }
    } else {
      if (!tagsEqual(hmacSha1(sk.auth, buf, 0, indexAt + SRTCP_INDEX_BYTES, null), buf, tagAt, tag)) return FAIL.auth_failed;
      if (encrypted) sk.cm!.xor(this.cmIv(sk.salt, ssrc, index), buf, RTCP_HEADER, bodyEnd);
    }

    if (window !== undefined) window.accept(index);
    else {
      const fresh = new ReplayWindow(this.windowSize);
      fresh.accept(index);
      this.remember(this.rtcpIn, ssrc, fresh);
    }
    key.srtcpUsed++;
    return { ok: true, packet: buf.subarray(0, bodyEnd) };
  }

  private remember<T>(map: Map<number, T>, ssrc: number, state: T): void {
    if (!map.has(ssrc) && map.size >= this.maxSources) map.delete(map.keys().next().value!);
    map.set(ssrc, state);
  }

  /**
   * Protects one plain RTP packet with the key at `keyIndex` (its MKI goes on the wire).
   * The rollover counter advances when the sequence number wraps. Throws RangeError on a
   * packet that is not RTP: the sender is ours.
   */
  protectRtp(plain: Buffer, keyIndex = 0): Buffer {
    const len = plain.length;
    if (len < RTP_HEADER || plain[0]! >>> 6 !== 2) throw new RangeError('not an RTP packet');
    const hdr = rtpHeaderLength(plain, len);
    if (hdr < 0) throw new RangeError('RTP header longer than the packet');
    const key = this.keyAt(keyIndex);
    const seq = plain.readUInt16BE(2);
    const ssrc = plain.readUInt32BE(8);
    let out = this.rtpOut.get(ssrc);
    if (out === undefined) {
      out = { roc: 0, lastSeq: seq };
      this.remember(this.rtpOut, ssrc, out);
    } else if (seq < out.lastSeq && out.lastSeq - seq > 0x8000) {
      out.roc++;
    }
    out.lastSeq = seq;
    const index = out.roc * 0x10000 + seq;
    const sk = key.session(false, this.rederive(index));
    const mki = key.mki ?? EMPTY;
    key.srtpUsed++;

    if (this.suite.transform === 'gcm') {
      const iv = this.gcmIv(sk.salt, ssrc, out.roc, seq);
      if (this.encryptRtp) {
        const sealed = gcmSeal(sk.key, iv, [plain.subarray(0, hdr)], plain.subarray(hdr));
        return Buffer.concat([plain.subarray(0, hdr), sealed, mki]);
      }
      return Buffer.concat([plain, gcmSeal(sk.key, iv, [plain], EMPTY), mki]);
    }
    const tag = this.srtpTag;
    const wire = Buffer.alloc(len + mki.length + tag);
    plain.copy(wire);
    if (this.encryptRtp) sk.cm!.xor(this.cmIv(sk.salt, ssrc, index), wire, hdr, len);
    mki.copy(wire, len);
    if (tag > 0) hmacSha1(sk.auth, wire, 0, len, out.roc).copy(wire, len + mki.length, 0, tag);
    return wire;
  }

  /**
   * Protects one plain (compound) RTCP packet. The SRTCP index counts from 1 per SSRC
   * unless `index` is given; the E flag follows UNENCRYPTED_SRTCP.
   */
  protectRtcp(plain: Buffer, keyIndex = 0, index?: number): Buffer {
    const len = plain.length;
    if (len < RTCP_HEADER || plain[0]! >>> 6 !== 2) throw new RangeError('not an RTCP packet');
    const key = this.keyAt(keyIndex);
    const ssrc = plain.readUInt32BE(4);
    const idx = index ?? ((this.rtcpOut.get(ssrc) ?? 0) + 1) & SRTCP_MAX_INDEX;
    this.remember(this.rtcpOut, ssrc, idx);
    const sk = key.session(true, this.rederive(idx));
    const mki = key.mki ?? EMPTY;
    const word = Buffer.alloc(SRTCP_INDEX_BYTES);
    word.writeUInt32BE(((this.encryptRtcp ? 0x80000000 : 0) | idx) >>> 0, 0);
    key.srtcpUsed++;

    if (this.suite.transform === 'gcm') {
      const iv = this.gcmIv(sk.salt, ssrc, idx >>> 16, idx & 0xffff);
      if (this.encryptRtcp) {
        const sealed = gcmSeal(sk.key, iv, [plain.subarray(0, RTCP_HEADER), word], plain.subarray(RTCP_HEADER));
        return Buffer.concat([plain.subarray(0, RTCP_HEADER), sealed, word, mki]);
      }
      return Buffer.concat([plain, gcmSeal(sk.key, iv, [plain, word], EMPTY), word, mki]);
    }
    const tag = this.suite.srtcpTagBytes;
    const wire = Buffer.alloc(len + SRTCP_INDEX_BYTES + mki.length + tag);
    plain.copy(wire);
    if (this.encryptRtcp) sk.cm!.xor(this.cmIv(sk.salt, ssrc, idx), wire, RTCP_HEADER, len);
    word.copy(wire, len);
    mki.copy(wire, len + SRTCP_INDEX_BYTES);
    hmacSha1(sk.auth, wire, 0, len + SRTCP_INDEX_BYTES, null).copy(wire, len + SRTCP_INDEX_BYTES + mki.length, 0, tag);
    return wire;
  }

  private keyAt(i: number): MasterKeyState {
    const k = this.keys[i];
    if (k === undefined) throw new RangeError('no SRTP key at that position');
    return k;
  }
}
