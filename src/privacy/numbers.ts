/**
 * Phone numbers: normalised to E.164, compared, stored masked and as a keyed hash. The clear
 * number only ever lives in memory during a call; what reaches the index is `maskNumber(...)`
 * and `NumberHasher.hash(...)` of the normalised form, so a subject access request can find a
 * person's recordings from any spelling of their number without the number being stored.
 * `sameNumber` is the one comparison of two spellings (roles, SIPREC metadata).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { KeyFileError, looseModeProblem } from '../secrets/key-file.js';

/** Inputs longer than this are not phone numbers (a SIP URI with parameters fits easily). */
const MAX_INPUT_CHARS = 256;
/** E.164: at most 15 digits including the country code. */
const MAX_E164_DIGITS = 15;
/**
 * Fewer significant digits than this is an extension, a short code or an emergency number,
 * never a customer's number: "1001", "112", "0200" give null.
 */
const MIN_SIGNIFICANT_DIGITS = 6;
/** Bare digit strings at least this long (no "+", "00" or "0") are taken to carry a country code. */
const MIN_BARE_INTERNATIONAL_DIGITS = 10;
/** Fewest digits a number written without its country code must have to match one with it. */
const MIN_SUBSCRIBER_DIGITS = 7;
/** Visual separators inside a written number (RFC 3966 allows - . ( ); people add spaces and /). */
const SEPARATORS = /[\s\-.()/]/g;
const DIGITS = /^\+?\d+$/;

/**
 * Normalises a number as a PBX, a SIPREC participant or a person writes it:
 *   "040 123 4567", "0401234567", "(09) 123 4567"   national forms, default country assumed
 *   "+358 40 123 4567", "00358401234567"            international forms
 *   "tel:+358-40-1234567", "sip:+358401234567@host;user=phone", "<sip:...>"
 *   "0200 12345", "0800 123 456", "010 123 4567"     Finnish service numbers (national form)
 * Returns "+<digits>" or null when the input is not a customer number: fewer than six
 * significant digits (extensions such as "1001", short codes), letters in the user part
 * ("anonymous"), more than 15 digits. Bare digits without a prefix are international when
 * they start with the default country code or have ten or more digits (trunks often drop the
 * "+"); a shorter bare string is a local number without its area code and cannot be placed.
 * Without a default country (undefined), national forms cannot be placed either.
 */
export function normalizeE164(input: string, defaultCountry: string | undefined): string | null {
  if (defaultCountry !== undefined && !/^\d{1,3}$/.test(defaultCountry)) return null;
  const s = dialString(input);
  if (s === null || !DIGITS.test(s)) return null;

  let international: string;
  if (s.startsWith('+')) {
    international = s.slice(1);
    if (international.startsWith('0')) return null; // no country code starts with 0
  } else if (s.startsWith('00')) {
    international = s.slice(2);
    if (international.startsWith('0')) return null;
  } else if (s.startsWith('0')) {
    if (defaultCountry === undefined) return null;
    const national = s.slice(1);
    if (national.length < MIN_SIGNIFICANT_DIGITS - 1) return null;
    international = defaultCountry + national;
  } else if (defaultCountry !== undefined && s.startsWith(defaultCountry) && s.length - defaultCountry.length >= MIN_SIGNIFICANT_DIGITS) {
    international = s;
  } else if (s.length >= MIN_BARE_INTERNATIONAL_DIGITS) {
    international = s;
  } else {
    return null;
  }
  if (international.length < MIN_SIGNIFICANT_DIGITS + 1 || international.length > MAX_E164_DIGITS) return null;
  return `+${international}`;
}

/**
 * The number part of a tel/sip URI, a name-addr or a written number, without visual
 * separators; null when the input is too long or malformed. Display names are dropped here.
 */
function dialString(input: string): string | null {
  if (input.length > MAX_INPUT_CHARS) return null;
  let s = input.trim();
  // Name-addr form: keep what is inside the angle brackets.
  const lt = s.indexOf('<');
  if (lt >= 0) {
    const gt = s.indexOf('>', lt);
    if (gt < 0) return null;
    s = s.slice(lt + 1, gt).trim();
  }
  const scheme = /^(sips?|tel):/i.exec(s);
  if (scheme) {
    s = s.slice(scheme[0].length);
    const at = s.indexOf('@');
    if (at >= 0) s = s.slice(0, at);
    const semi = s.indexOf(';');
    if (semi >= 0) s = s.slice(0, semi);
  }
  return s.replace(SEPARATORS, '');
}

/**
 * Whether two spellings name the same number or extension: "0200 100" and "0200100";
 * "+358 20 123 4567", "00358201234567" and, with default country 358, "020 123 4567"; and a
 * number written without its country code, "7602922410", with "+17602922410" (when one side
 * has no international prefix, the shorter's digits, at least seven, end the longer's).
 * Anything that is not a number (an extension such as "alice") matches only itself.
 */
export function sameNumber(a: string, b: string, defaultCountry?: string): boolean {
  if (a.length > MAX_INPUT_CHARS || b.length > MAX_INPUT_CHARS) return false;
  const ca = a.trim().replace(SEPARATORS, '');
  const cb = b.trim().replace(SEPARATORS, '');
  if (ca === '' || cb === '') return false;
  if (ca === cb) return true;
  if (!DIGITS.test(ca) || !DIGITS.test(cb)) return false;
  const ea = normalizeE164(ca, defaultCountry);
  if (ea !== null && ea === normalizeE164(cb, defaultCountry)) return true;
  if (isInternational(ca) && isInternational(cb)) return false;
  const da = digitsOf(ca);
  const db = digitsOf(cb);
  const [short, long] = da.length < db.length ? [da, db] : [db, da];
  return short.length >= MIN_SUBSCRIBER_DIGITS && long.endsWith(short);
}

/**
 * A service number pattern matches when both sides are the same number (in any spelling:
 * "0200 12345" and "+35820012345" are one number) or, for a pattern ending in "*", when
 * the compacted number starts with the rest of the pattern ("+358200*").
 */
export function numberMatchesPattern(pattern: string, value: string, defaultCountry: string | undefined): boolean {
  if (pattern.length > MAX_INPUT_CHARS || value.length > MAX_INPUT_CHARS) return false;
  const p = pattern.replace(SEPARATORS, '');
  const v = value.replace(SEPARATORS, '');
  if (p.endsWith('*')) {
    const stem = p.slice(0, -1);
    if (v.startsWith(stem)) return true;
    const ve = normalizeE164(v, defaultCountry);
    const stemE = defaultCountry && stem.startsWith('0') && !stem.startsWith('00') ? `+${defaultCountry}${stem.slice(1)}` : stem;
    return ve !== null && ve.startsWith(stemE);
  }
  if (p === v) return true;
  const pe = normalizeE164(p, defaultCountry);
  return pe !== null && pe === normalizeE164(v, defaultCountry);
}

/** Written with its country code: "+..." or "00...". */
function isInternational(compact: string): boolean {
  return compact.startsWith('+') || compact.startsWith('00');
}

/** The digits after any international prefix. */
function digitsOf(compact: string): string {
  if (compact.startsWith('+')) return compact.slice(1);
  if (compact.startsWith('00')) return compact.slice(2);
  return compact;
}

/**
 * Hides the last `hiddenDigits` digits with "*", leaving separators and everything before
 * them as they were: "+358401234567" → "+358401234***". A number with no more digits than
 * are to be hidden is hidden entirely.
 */
export function maskNumber(e164OrRaw: string, hiddenDigits: number): string {
  const s = e164OrRaw.length > MAX_INPUT_CHARS ? e164OrRaw.slice(0, MAX_INPUT_CHARS) : e164OrRaw;
  if (hiddenDigits <= 0) return s;
  const chars = [...s];
  let left = hiddenDigits;
  for (let i = chars.length - 1; i >= 0 && left > 0; i--) {
    if (chars[i]! >= '0' && chars[i]! <= '9') {
      chars[i] = '*';
      left--;
    }
  }
  return chars.join('');
}

const KEY_BYTES = 32;
const MIN_KEY_BYTES = 16;

/** HMAC-SHA-256 of normalised numbers under a secret key kept in a file. */
export class NumberHasher {
  private readonly key: Buffer;
  /** True when open() created the key file (first start). */
  readonly created: boolean;

  private constructor(key: Buffer, created: boolean) {
    this.key = key;
    this.created = created;
  }

  /**
   * Reads the key file, or creates it (and its folder) with 32 random bytes and mode 0600
   * when absent. An existing file open to group or others is refused with KeyFileError:
   * whoever can read it can undo the hashing of every stored number.
   */
  static open(keyFile: string): NumberHasher {
    let created = false;
    try {
      const fd = openSync(keyFile, 'wx', 0o600);
      try {
        writeSync(fd, randomBytes(KEY_BYTES));
      } finally {
        closeSync(fd);
      }
      created = true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
        return NumberHasher.open(keyFile);
      }
      if (code !== 'EEXIST') throw e;
    }
    if (created) chmodSync(keyFile, 0o600); // the umask cannot widen it, but be explicit
    const fd = openSync(keyFile, 'r');
    let mode: number;
    try {
      mode = fstatSync(fd).mode;
    } finally {
      closeSync(fd);
    }
    const loose = looseModeProblem('privacy.hash_key_file', keyFile, mode);
    if (loose !== undefined) throw new KeyFileError([loose]);
    const key = readFileSync(keyFile);
    if (key.length < MIN_KEY_BYTES) {
      throw new Error(`number hash key file ${keyFile} holds ${key.length} bytes; at least ${MIN_KEY_BYTES} are needed`);
    }
    return new NumberHasher(key, created);
  }

  /** Hex HMAC-SHA-256 of an E.164 number; anything else is refused so lookups cannot silently miss. */
  hash(e164: string): string {
    if (!/^\+[1-9]\d{5,14}$/.test(e164)) throw new Error('NumberHasher.hash takes a normalised E.164 number');
    return createHmac('sha256', this.key).update(e164, 'utf8').digest('hex');
  }
}

/** What the register stores about a customer's number. */
export interface ProtectedNumber {
  /** Masked number: the normalised form when there is one, else the raw input masked. */
  readonly masked: string;
  /** Keyed hash of the normalised form; absent when the input is not a phone number. */
  readonly hash?: string;
}

/**
 * The one call the daemon makes with a clear number: normalise, mask, hash. The clear number
 * goes no further than this function's stack.
 */
export function protectNumber(
  raw: string,
  privacy: { readonly mask_digits: number; readonly default_country: string },
  hasher: NumberHasher,
): ProtectedNumber {
  const e164 = normalizeE164(raw, privacy.default_country);
  if (e164 === null) {
    // Not a phone number (an extension, "anonymous"): keep only its digits, masked, so a
    // display name or a host never reaches the register.
    const digits = (dialString(raw) ?? '').replace(/\D/g, '');
    return { masked: digits.length > 0 ? maskNumber(digits, privacy.mask_digits) : 'withheld' };
  }
  return { masked: maskNumber(e164, privacy.mask_digits), hash: hasher.hash(e164) };
}
