/**
 * SRTP offers for tests: turns the audio m-lines of any SDP (a shared SIPREC sample, a test
 * offer) into RTP/SAVP with the a=crypto lines given, in the forms RFC 4568 and RFC 7714
 * write them, and reads the daemon's answer key back. Keys are random per test.
 */
import { randomBytes } from 'node:crypto';
import { SRTP_SUITES, type SrtpSuiteName } from '../../src/rtp/srtp-suites.js';
import { parseCryptoAttribute } from '../../src/sip/sdes.js';
import type { SrtpPolicy } from '../../src/rtp/srtp.js';

/** One offered SDES key: its suite, key||salt, and the inline text for a=crypto. */
export interface OfferedKey {
  readonly suite: SrtpSuiteName;
  readonly keySalt: Buffer;
  /** base64 of key||salt: what must never appear in a log line. */
  readonly base64: string;
}

export function newKey(suite: SrtpSuiteName): OfferedKey {
  const s = SRTP_SUITES[suite];
  const keySalt = randomBytes(s.keyBytes + s.saltBytes);
  return { suite, keySalt, base64: keySalt.toString('base64') };
}

/** `a=crypto` value: `tag suite inline:KEY[|lifetime][|mki:len] [params]`. */
export function cryptoLine(tag: number, key: OfferedKey, opts: { lifetime?: string; mki?: string; params?: string } = {}): string {
  const extras = [opts.lifetime, opts.mki].filter((x): x is string => x !== undefined).map((x) => `|${x}`).join('');
  return `${tag} ${key.suite} inline:${key.base64}${extras}${opts.params ? ` ${opts.params}` : ''}`;
}

/** The SrtpPolicy the sender protects with: the attribute as the daemon parses it. */
export function senderPolicy(attribute: string): SrtpPolicy {
  const c = parseCryptoAttribute(attribute);
  if (c === null) throw new Error('unusable crypto attribute in a test');
  return c.srtpPolicy();
}

/**
 * The SDP with its audio m-lines (in order) made `proto` (RTP/SAVP by default) and each
 * given the crypto lines at its position in `crypto` (right after the m= line). Lines
 * keep the SDP's own line ends.
 */
export function toSrtpOffer(sdp: string, crypto: ReadonlyArray<readonly string[]>, proto = 'RTP/SAVP'): string {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  let audio = 0;
  return sdp.split(eol).flatMap((line) => {
    const m = /^m=audio (\S+) RTP\/AVPF? (.*)$/.exec(line);
    if (!m) return [line];
    const lines = crypto[audio++] ?? [];
    return [`m=audio ${m[1]} ${proto} ${m[2]}`, ...lines.map((c) => `a=crypto:${c}`)];
  }).join(eol);
}

/** The a=crypto values of each audio m-line of an answer, in order (empty when plain). */
export function answerCrypto(sdp: string): string[][] {
  const out: string[][] = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) out.push([]);
    else if (line.startsWith('a=crypto:') && out.length > 0) out[out.length - 1]!.push(line.slice('a=crypto:'.length));
  }
  return out;
}
