/**
 * SDES keying for SRTP (RFC 4568): parses the `a=crypto` attributes of an offered m-line,
 * picks the first one we support, and builds the crypto attribute of our answer.
 *
 *   a=crypto:<tag> <suite> inline:<base64 key||salt>[|<lifetime>][|<MKI>:<length>][;inline:...] [session params]
 *
 * Pure functions with hard size limits. Key material lives in `SdesCrypto`'s private field
 * and leaves it only as an `SrtpPolicy`; errors, `toString`, JSON and `util.inspect` never
 * carry it. Malformed attributes throw ProtocolError('TALLENNE_SDP_MALFORMED', 400); a
 * well-formed attribute we cannot use (unknown suite, an unknown mandatory parameter) is
 * skipped, as RFC 4568 §7 asks.
 */
import { ProtocolError } from '../errors.js';
import type { SrtpMasterKey, SrtpPolicy } from '../rtp/srtp.js';
import { MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW } from '../rtp/srtp-replay.js';
import { srtpSuite, type SrtpSuite, type SrtpSuiteName } from '../rtp/srtp-suites.js';

export const SDES_LIMITS = {
  /** Characters of one attribute value (after `a=crypto:`). */
  maxAttributeChars: 4096,
  /** a=crypto lines looked at per m-line. */
  maxAttributes: 32,
  /** inline keys per attribute. */
  maxKeys: 16,
  maxSessionParams: 16,
  /** RFC 4568 §9.1: tag is 1*9DIGIT. */
  maxTagDigits: 9,
  /** RFC 4568 §6.1: MKI length 1..128 octets. */
  maxMkiBytes: 128,
} as const;

export interface SdesSessionParams {
  unencryptedSrtp: boolean;
  unencryptedSrtcp: boolean;
  unauthenticatedSrtp: boolean;
  /** RFC 3711 key derivation rate (2^KDR), 0 when absent. */
  keyDerivationRate: number;
  /** WSH: the offerer's replay window size hint, when given. */
  windowSizeHint?: number;
}

/** One usable `a=crypto` attribute. Keys stay private. */
export class SdesCrypto {
  readonly tag: number;
  readonly suite: SrtpSuiteName;
  readonly mkiLength: number;
  readonly keyCount: number;
  readonly params: Readonly<SdesSessionParams>;
  readonly #keys: readonly SrtpMasterKey[];

  constructor(tag: number, suite: SrtpSuiteName, keys: readonly SrtpMasterKey[], mkiLength: number, params: SdesSessionParams) {
    this.tag = tag;
    this.suite = suite;
    this.#keys = keys;
    this.mkiLength = mkiLength;
    this.keyCount = keys.length;
    this.params = Object.freeze({ ...params });
  }

  /** The policy for the SrtpSession that receives what the offerer sends. */
  srtpPolicy(): SrtpPolicy {
    const p = this.params;
    return {
      suite: this.suite,
      keys: this.#keys.map((k) => ({ ...k })),
      mkiLength: this.mkiLength,
      keyDerivationRate: p.keyDerivationRate,
      unencryptedSrtp: p.unencryptedSrtp,
      unencryptedSrtcp: p.unencryptedSrtcp,
      unauthenticatedSrtp: p.unauthenticatedSrtp,
      ...(p.windowSizeHint !== undefined ? { replayWindow: Math.min(MAX_REPLAY_WINDOW, p.windowSizeHint) } : {}),
    };
  }

  toString(): string {
    return `SdesCrypto(${this.tag} ${this.suite}, ${this.keyCount} key(s))`;
  }

  toJSON(): { tag: number; suite: SrtpSuiteName; keyCount: number; mkiLength: number } {
    return { tag: this.tag, suite: this.suite, keyCount: this.keyCount, mkiLength: this.mkiLength };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function malformed(what: string): ProtocolError {
  return new ProtocolError('TALLENNE_SDP_MALFORMED', 400, `a=crypto: ${what}`);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DIGITS = /^[0-9]+$/;

/** Strict base64 of exactly `bytes` octets, padding optional. */
function decodeKeySalt(text: string, bytes: number, suite: SrtpSuiteName): Buffer {
  const bad = (): ProtocolError => malformed(`inline key is not ${bytes} octets of base64 for ${suite}`);
  if (!BASE64.test(text) || text.length > 4 * Math.ceil(bytes / 3)) throw bad();
  const raw = Buffer.from(text, 'base64');
  if (raw.length !== bytes || raw.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) throw bad();
  return raw;
}

/** `2^n` or a decimal count of packets. */
function parseLifetime(text: string, max: number): number {
  let n: number;
  if (text.startsWith('2^')) {
    const e = text.slice(2);
    if (!DIGITS.test(e) || e.length > 2) throw malformed('bad key lifetime');
    n = 2 ** Number(e);
  } else {
    if (!DIGITS.test(text) || text.length > 15) throw malformed('bad key lifetime');
    n = Number(text);
  }
  if (n < 1 || n > max) throw malformed('key lifetime out of range');
  return n;
}

/** `<value>:<length>`: a decimal MKI value written big-endian in `length` octets. */
function parseMki(text: string): Buffer {
  const colon = text.indexOf(':');
  const value = text.slice(0, colon);
  const length = text.slice(colon + 1);
  if (!DIGITS.test(value) || !DIGITS.test(length) || length.length > 3) throw malformed('bad MKI');
  const bytes = Number(length);
  if (bytes < 1 || bytes > SDES_LIMITS.maxMkiBytes || value.length > 3 * bytes + 1) throw malformed('MKI length out of range');
  let v = BigInt(value);
  if (v >= 1n << BigInt(8 * bytes)) throw malformed('MKI value does not fit its length');
  const out = Buffer.alloc(bytes);
  for (let i = bytes - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/** One `inline:key||salt[|lifetime][|mki:len]`. */
function parseKeyParam(text: string, suite: SrtpSuite): SrtpMasterKey {
  if (!text.startsWith('inline:')) throw malformed('only the inline key method is defined for SRTP');
  const parts = text.slice('inline:'.length).split('|');
  if (parts.length > 3) throw malformed('too many fields in an inline key');
  const raw = decodeKeySalt(parts[0]!, suite.keyBytes + suite.saltBytes, suite.name);
  const key: SrtpMasterKey = { key: raw.subarray(0, suite.keyBytes), salt: raw.subarray(suite.keyBytes) };
  let sawMki = false;
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.includes(':')) {
      if (sawMki) throw malformed('two MKIs in one inline key');
      key.mki = parseMki(p);
      sawMki = true;
    } else {
      if (sawMki || i !== 1) throw malformed('the key lifetime must come before the MKI');
      key.lifetime = parseLifetime(p, suite.maxLifetime);
    }
  }
  return key;
}

/** Returns the parameters, or null when one we do not support is mandatory. */
function parseSessionParams(tokens: readonly string[], suite: SrtpSuite): SdesSessionParams | null {
  if (tokens.length > SDES_LIMITS.maxSessionParams) throw malformed('too many session parameters');
  const p: SdesSessionParams = { unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, keyDerivationRate: 0 };
  let supported = true;
  for (const t of tokens) {
    const eq = t.indexOf('=');
    const name = eq < 0 ? t : t.slice(0, eq);
    const value = eq < 0 ? '' : t.slice(eq + 1);
    switch (name) {
      case 'UNENCRYPTED_SRTP':
        p.unencryptedSrtp = true;
        break;
      case 'UNENCRYPTED_SRTCP':
        p.unencryptedSrtcp = true;
        break;
      case 'UNAUTHENTICATED_SRTP':
        p.unauthenticatedSrtp = true;
        break;
      case 'KDR': {
        if (!DIGITS.test(value) || value.length > 2 || Number(value) > 24) throw malformed('bad KDR');
        const n = Number(value);
        p.keyDerivationRate = n === 0 ? 0 : 2 ** n;
        break;
      }
      case 'WSH': {
        if (!DIGITS.test(value) || value.length > 9 || Number(value) < MIN_REPLAY_WINDOW) throw malformed('bad WSH');
        p.windowSizeHint = Number(value);
        break;
      }
      case 'FEC_ORDER':
        // Only meaningful with FEC, which the recorder does not receive; any order is fine.
        if (value !== 'FEC_SRTP' && value !== 'SRTP_FEC') throw malformed('bad FEC_ORDER');
        break;
      default:
        // RFC 4568 §6.3.7: a leading '-' marks an optional parameter; FEC_KEY and any
        // other unknown one is mandatory, so this attribute cannot be used.
        if (!name.startsWith('-')) supported = false;
    }
  }
  // RFC 7714: AEAD transforms always authenticate.
  if (suite.transform === 'gcm' && p.unauthenticatedSrtp) supported = false;
  return supported ? p : null;
}

/**
 * Parses one attribute value (what follows `a=crypto:`). Returns null for a well-formed
 * attribute we cannot use; throws ProtocolError when it is malformed.
 */
export function parseCryptoAttribute(value: string): SdesCrypto | null {
  if (value.length > SDES_LIMITS.maxAttributeChars) throw malformed('attribute too long');
  const tokens = value.trim().split(/[ \t]+/);
  if (tokens.length < 3) throw malformed('expected a tag, a suite and key parameters');
  const [tagText, suiteName, keyParams] = tokens as [string, string, string];
  if (!DIGITS.test(tagText) || tagText.length > SDES_LIMITS.maxTagDigits) throw malformed('bad tag');
  const tag = Number(tagText);
  if (!/^[A-Za-z0-9_]{1,64}$/.test(suiteName)) throw malformed('bad crypto suite name');
  const suite = srtpSuite(suiteName);
  if (suite === undefined) return null;

  const keyTexts = keyParams.split(';');
  if (keyTexts.length > SDES_LIMITS.maxKeys) throw malformed('too many keys');
  const keys = keyTexts.map((k) => parseKeyParam(k, suite));
  const mkiLength = keys[0]!.mki?.length ?? 0;
  if (keys.some((k) => (k.mki?.length ?? 0) !== mkiLength)) throw malformed('keys differ in MKI length');
  if (keys.length > 1) {
    if (mkiLength === 0) throw malformed('several keys need MKIs');
    const seen = new Set(keys.map((k) => k.mki!.toString('hex')));
    if (seen.size !== keys.length) throw malformed('two keys share an MKI');
  }
  const params = parseSessionParams(tokens.slice(3), suite);
  return params === null ? null : new SdesCrypto(tag, suite.name, keys, mkiLength, params);
}

export interface CryptoChoice {
  /** The first usable attribute in the offer's order, or null. */
  chosen: SdesCrypto | null;
  /** Well-formed attributes skipped because we cannot use them. */
  unsupported: number;
  /** Malformed attributes skipped. */
  malformed: number;
}

/**
 * RFC 4568 §7: the answerer takes the first attribute, in the offer's order of
 * preference, that it supports. Malformed attributes are skipped when another one is
 * usable; when none is and one was malformed, its error is thrown so the cause is clear.
 * Duplicate tags make the m-line malformed.
 */
export function chooseCrypto(values: readonly string[]): CryptoChoice {
  if (values.length > SDES_LIMITS.maxAttributes) throw malformed('too many crypto attributes');
  const tags = new Set<string>();
  let chosen: SdesCrypto | null = null;
  let unsupported = 0;
  let bad = 0;
  let firstError: ProtocolError | null = null;
  for (const v of values) {
    const tag = v.trim().split(/[ \t]/, 1)[0]!;
    if (tags.has(tag)) throw malformed('two crypto attributes share a tag');
    tags.add(tag);
    if (chosen !== null) continue;
    try {
      const c = parseCryptoAttribute(v);
      if (c === null) unsupported++;
      else chosen = c;
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      bad++;
      firstError ??= e;
    }
  }
  if (chosen === null && firstError !== null) throw firstError;
  return { chosen, unsupported, malformed: bad };
}

/**
 * Our answer's attribute value (without `a=crypto:`): the chosen tag and suite with our own
 * key||salt (`keySalt`, from a CSPRNG, exactly the suite's length), no lifetime or MKI,
 * and the session parameters of the offer that apply to both directions echoed back
 * (RFC 4568 §6.3.2, §6.3.3).
 */
export function buildCryptoAnswer(chosen: SdesCrypto, keySalt: Buffer): string {
  const suite = srtpSuite(chosen.suite)!;
  if (keySalt.length !== suite.keyBytes + suite.saltBytes) throw new RangeError('answer key has the wrong length for the suite');
  const parts = [String(chosen.tag), chosen.suite, `inline:${keySalt.toString('base64')}`];
  if (chosen.params.unencryptedSrtp) parts.push('UNENCRYPTED_SRTP');
  if (chosen.params.unencryptedSrtcp) parts.push('UNENCRYPTED_SRTCP');
  if (chosen.params.unauthenticatedSrtp) parts.push('UNAUTHENTICATED_SRTP');
  return parts.join(' ');
}

/** The policy for our own direction (the RTCP reports we send), keyed by our answer's key. */
export function answerPolicy(chosen: SdesCrypto, keySalt: Buffer): SrtpPolicy {
  const suite = srtpSuite(chosen.suite)!;
  return {
    suite: chosen.suite,
    keys: [{ key: Buffer.from(keySalt.subarray(0, suite.keyBytes)), salt: Buffer.from(keySalt.subarray(suite.keyBytes)) }],
    unencryptedSrtp: chosen.params.unencryptedSrtp,
    unencryptedSrtcp: chosen.params.unencryptedSrtcp,
    unauthenticatedSrtp: chosen.params.unauthenticatedSrtp,
  };
}

/** How the media of one m-line is keyed, as far as the recorder can take it. */
export type MediaKeying =
  | { readonly kind: 'plain' }
  | { readonly kind: 'sdes'; readonly crypto: SdesCrypto; readonly attribute: string }
  /** A secure profile the recorder cannot key: DTLS-SRTP, or SAVP with no usable a=crypto. */
  | { readonly kind: 'unsupported'; readonly why: string };

const PLAIN_PROFILE = /^RTP\/AVPF?$/i;
const SDES_PROFILE = /^RTP\/SAVPF?$/i;
const PLAIN: MediaKeying = Object.freeze({ kind: 'plain' });

/**
 * The keying of an m-line from its profile and its a=crypto values: RTP/AVP(F) is plain
 * (crypto lines on it are ignored, as RFC 4568 §5 defines them for SAVP only); RTP/SAVP(F)
 * takes the first usable attribute; any other profile (UDP/TLS/RTP/SAVP: DTLS-SRTP) is
 * unsupported. Throws ProtocolError (400) as chooseCrypto does when every attribute is
 * malformed. `attribute` is the chosen value as offered: a re-offer that repeats it keeps
 * the keys, one that changes it re-keys.
 */
export function offeredKeying(proto: string, cryptoAttributes: readonly string[]): MediaKeying {
  if (PLAIN_PROFILE.test(proto)) return PLAIN;
  if (!SDES_PROFILE.test(proto)) return { kind: 'unsupported', why: `profile ${proto.slice(0, 40)} is not supported (SRTP needs RTP/SAVP with a=crypto; DTLS-SRTP is not supported)` };
  if (cryptoAttributes.length === 0) return { kind: 'unsupported', why: 'RTP/SAVP without a=crypto (SDES) keys' };
  const { chosen } = chooseCrypto(cryptoAttributes);
  if (chosen === null) return { kind: 'unsupported', why: 'no offered SRTP crypto suite or parameter set is supported' };
  const attribute = cryptoAttributes.find((v) => Number(v.trim().split(/[ \t]/, 1)[0]) === chosen.tag)!;
  return { kind: 'sdes', crypto: chosen, attribute };
}
