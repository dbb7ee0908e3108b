import { describe, it, expect } from 'vitest';
import { inspect } from 'node:util';
import {
  answerPolicy, buildCryptoAnswer, chooseCrypto, offeredKeying, parseCryptoAttribute, SDES_LIMITS, SdesCrypto,
} from '../../../src/sip/sdes.js';
import { ProtocolError } from '../../../src/errors.js';
import { SrtpSession } from '../../../src/rtp/srtp.js';

/** key||salt of `n` octets, distinct per seed, and its base64. */
function material(n: number, seed = 1): { raw: Buffer; b64: string } {
  const raw = Buffer.alloc(n);
  for (let i = 0; i < n; i++) raw[i] = (i * 13 + seed * 101) & 0xff;
  return { raw, b64: raw.toString('base64') };
}
const CM = material(30);
const GCM128 = material(28);
const GCM256 = material(44);

function parseOk(v: string): SdesCrypto {
  const c = parseCryptoAttribute(v);
  if (c === null) throw new Error('unsupported');
  return c;
}

function parseError(v: string): ProtocolError {
  try {
    parseCryptoAttribute(v);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe('TALLENNE_SDP_MALFORMED');
    expect((e as ProtocolError).status).toBe(400);
    return e as ProtocolError;
  }
  throw new Error(`expected a ProtocolError for ${v.slice(0, 20)}`);
}

describe('parseCryptoAttribute', () => {
  it('reads the plain form (RFC 4568 §9.2 style)', () => {
    const c = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`);
    expect([c.tag, c.suite, c.keyCount, c.mkiLength]).toEqual([1, 'AES_CM_128_HMAC_SHA1_80', 1, 0]);
    const p = c.srtpPolicy();
    expect(p.keys[0]!.key).toEqual(CM.raw.subarray(0, 16));
    expect(p.keys[0]!.salt).toEqual(CM.raw.subarray(16));
    expect(p.keys[0]!.lifetime).toBeUndefined();
    expect(p.keyDerivationRate).toBe(0);
  });

  it('reads each suite with its key length, GCM with and without base64 padding', () => {
    expect(parseOk(`2 AES_CM_128_HMAC_SHA1_32 inline:${CM.b64}`).suite).toBe('AES_CM_128_HMAC_SHA1_32');
    expect(parseOk(`3 AEAD_AES_128_GCM inline:${GCM128.b64}`).srtpPolicy().keys[0]!.salt).toEqual(GCM128.raw.subarray(16));
    expect(GCM128.b64.endsWith('=')).toBe(true);
    expect(parseOk(`3 AEAD_AES_128_GCM inline:${GCM128.b64.replace(/=+$/, '')}`).suite).toBe('AEAD_AES_128_GCM');
    expect(parseOk(`4 AEAD_AES_256_GCM inline:${GCM256.b64}`).srtpPolicy().keys[0]!.key).toEqual(GCM256.raw.subarray(0, 32));
  });

  it('reads lifetime and MKI, in either notation of the lifetime', () => {
    const a = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:4`).srtpPolicy();
    expect(a.keys[0]!.lifetime).toBe(2 ** 20);
    expect(a.keys[0]!.mki).toEqual(Buffer.from([0, 0, 0, 1]));
    expect(a.mkiLength).toBe(4);
    const b = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|1048576`).srtpPolicy();
    expect(b.keys[0]!.lifetime).toBe(1048576);
    const c = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|258:2`).srtpPolicy();
    expect(c.keys[0]!.mki).toEqual(Buffer.from([1, 2]));
    expect(c.keys[0]!.lifetime).toBeUndefined();
    // RFC 4568's own example uses a 32-octet MKI.
    expect(parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:32`).mkiLength).toBe(32);
  });

  it('reads several inline keys told apart by MKI', () => {
    const k2 = material(30, 2);
    const c = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:4;inline:${k2.b64}|2^20|2:4`);
    expect(c.keyCount).toBe(2);
    const p = c.srtpPolicy();
    expect(p.keys.map((k) => k.mki!.readUInt32BE(0))).toEqual([1, 2]);
    expect(p.keys[1]!.key).toEqual(k2.raw.subarray(0, 16));
    // The policy builds a working session.
    expect(() => new SrtpSession(p)).not.toThrow();
  });

  it('reads the session parameters SBCs send', () => {
    const c = parseOk(
      `9 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} UNENCRYPTED_SRTCP UNENCRYPTED_SRTP UNAUTHENTICATED_SRTP KDR=10 WSH=256 FEC_ORDER=FEC_SRTP -X_VENDOR=1`,
    );
    expect(c.params).toEqual({
      unencryptedSrtp: true, unencryptedSrtcp: true, unauthenticatedSrtp: true, keyDerivationRate: 1024, windowSizeHint: 256,
    });
    const p = c.srtpPolicy();
    expect([p.unencryptedSrtp, p.unencryptedSrtcp, p.unauthenticatedSrtp, p.keyDerivationRate, p.replayWindow]).toEqual([
      true, true, true, 1024, 256,
    ]);
    expect(() => new SrtpSession(p)).not.toThrow();
  });

  it('skips (null) an unknown suite, an unknown mandatory parameter, FEC_KEY, and GCM without authentication', () => {
    expect(parseCryptoAttribute(`1 F8_128_HMAC_SHA1_80 inline:${CM.b64}`)).toBeNull();
    expect(parseCryptoAttribute(`1 AES_256_CM_HMAC_SHA1_80 inline:whatever`)).toBeNull();
    expect(parseCryptoAttribute(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} NEW_THING=1`)).toBeNull();
    expect(parseCryptoAttribute(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} FEC_KEY=inline:${CM.b64}`)).toBeNull();
    expect(parseCryptoAttribute(`1 AEAD_AES_128_GCM inline:${GCM128.b64} UNAUTHENTICATED_SRTP`)).toBeNull();
  });

  it('refuses malformed attributes cleanly', () => {
    const bad = [
      '',
      '1 AES_CM_128_HMAC_SHA1_80',
      `x AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`,
      `1234567890 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`,
      `1 AES-CM/128 inline:${CM.b64}`,
      `1 AES_CM_128_HMAC_SHA1_80 uri:https://example.invalid/k`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${GCM128.b64}`, // 28 octets for a 30-octet suite
      `1 AEAD_AES_256_GCM inline:${CM.b64}`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64.slice(0, -1)}*`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}AAAA`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^49`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|0`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^x`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|1:4|2^20`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|1:4|2:4`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:0`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:129`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|256:1`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|x:1`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:4|5`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64};inline:${material(30, 2).b64}`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|1:4;inline:${material(30, 2).b64}|1:4`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|1:4;inline:${material(30, 2).b64}|2:2`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} KDR=25`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} KDR=x`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} WSH=10`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64} FEC_ORDER=LATER`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}` + ' UNENCRYPTED_SRTP'.repeat(SDES_LIMITS.maxSessionParams + 1),
      `1 AES_CM_128_HMAC_SHA1_80 ${Array.from({ length: 17 }, (_, i) => `inline:${CM.b64}|${i + 1}:1`).join(';')}`,
      `1 AES_CM_128_HMAC_SHA1_80 inline:${'A'.repeat(5000)}`,
    ];
    for (const v of bad) {
      const e = parseError(v);
      // No error message ever quotes key material.
      expect(e.message).not.toContain(CM.b64.slice(0, 8));
      expect(e.message).not.toContain(GCM128.b64.slice(0, 8));
    }
  });
});

describe('chooseCrypto', () => {
  it('takes the first supported attribute in the offer order', () => {
    const r = chooseCrypto([
      `1 AES_192_CM_HMAC_SHA1_80 inline:${material(38).b64}`,
      `2 AEAD_AES_256_GCM inline:${GCM256.b64}`,
      `3 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`,
    ]);
    expect(r.chosen?.tag).toBe(2);
    expect(r.chosen?.suite).toBe('AEAD_AES_256_GCM');
    expect(r.unsupported).toBe(1);
    expect(r.malformed).toBe(0);
  });

  it('skips a malformed attribute when a later one is usable', () => {
    const r = chooseCrypto([`1 AES_CM_128_HMAC_SHA1_80 inline:short`, `2 AES_CM_128_HMAC_SHA1_32 inline:${CM.b64}`]);
    expect(r.chosen?.tag).toBe(2);
    expect(r.malformed).toBe(1);
  });

  it('nothing usable: null when all are unknown, the first error when one was malformed', () => {
    expect(chooseCrypto([`1 NULL_HMAC_SHA1_80 inline:${CM.b64}`]).chosen).toBeNull();
    expect(chooseCrypto([]).chosen).toBeNull();
    expect(() => chooseCrypto([`1 NULL_HMAC_SHA1_80 inline:${CM.b64}`, `2 AES_CM_128_HMAC_SHA1_80 inline:x`])).toThrow(ProtocolError);
  });

  it('refuses duplicate tags and too many attributes', () => {
    expect(() => chooseCrypto([`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`, `1 AES_CM_128_HMAC_SHA1_32 inline:${CM.b64}`])).toThrow(
      ProtocolError,
    );
    const many = Array.from({ length: SDES_LIMITS.maxAttributes + 1 }, (_, i) => `${i} AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`);
    expect(() => chooseCrypto(many)).toThrow(ProtocolError);
  });
});

describe('buildCryptoAnswer', () => {
  it('answers with the same tag and suite, our key, and the echoed session parameters; it parses back', () => {
    const offer = parseOk(`5 AEAD_AES_128_GCM inline:${GCM128.b64}|2^31|7:1 UNENCRYPTED_SRTCP KDR=4`);
    const ours = material(28, 9);
    const line = buildCryptoAnswer(offer, ours.raw);
    expect(line).toBe(`5 AEAD_AES_128_GCM inline:${ours.b64} UNENCRYPTED_SRTCP`);
    const back = parseOk(line);
    expect(back.srtpPolicy().keys[0]!.key).toEqual(ours.raw.subarray(0, 16));
    expect(() => buildCryptoAnswer(offer, material(30).raw)).toThrow(RangeError);
  });

  it('the answer policy protects what a session built from the parsed answer unprotects', () => {
    const offer = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`);
    const ours = material(30, 4);
    const tx = new SrtpSession(answerPolicy(offer, ours.raw));
    const rx = new SrtpSession(parseOk(buildCryptoAnswer(offer, ours.raw)).srtpPolicy());
    const rr = Buffer.from([0x80, 201, 0, 1, 1, 2, 3, 4]);
    const r = rx.unprotectRtcp(tx.protectRtcp(rr));
    expect(r.ok && r.packet.equals(rr)).toBe(true);
  });
});

describe('secrets', () => {
  it('SdesCrypto shows no key in toString, JSON or inspect', () => {
    const c = parseOk(`1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}|2^20|1:4`);
    for (const text of [String(c), JSON.stringify(c), inspect(c, { depth: 10, showHidden: true })]) {
      expect(text).toContain('AES_CM_128_HMAC_SHA1_80');
      expect(text).not.toContain(CM.b64.slice(0, 8));
      expect(text).not.toContain(CM.raw.toString('hex').slice(0, 8));
    }
  });
});

describe('offeredKeying', () => {
  const cm = `1 AES_CM_128_HMAC_SHA1_80 inline:${CM.b64}`;
  it('plain profiles are plain, crypto lines on them ignored', () => {
    expect(offeredKeying('RTP/AVP', []).kind).toBe('plain');
    expect(offeredKeying('RTP/AVPF', [cm]).kind).toBe('plain');
  });
  it('RTP/SAVP(F) takes the first usable attribute and names it as offered', () => {
    const k = offeredKeying('RTP/SAVPF', [`7 F8_128_HMAC_SHA1_80 inline:${CM.b64}`, `08 AEAD_AES_128_GCM inline:${GCM128.b64}`, cm]);
    expect(k.kind).toBe('sdes');
    if (k.kind !== 'sdes') return;
    expect(k.crypto.suite).toBe('AEAD_AES_128_GCM');
    expect(k.attribute).toBe(`08 AEAD_AES_128_GCM inline:${GCM128.b64}`);
  });
  it('DTLS-SRTP, SAVP without keys and SAVP with only unknown suites are unsupported; malformed lines throw 400', () => {
    expect(offeredKeying('UDP/TLS/RTP/SAVP', []).kind).toBe('unsupported');
    expect(offeredKeying('UDP/TLS/RTP/SAVPF', [cm]).kind).toBe('unsupported');
    expect(offeredKeying('RTP/SAVP', []).kind).toBe('unsupported');
    expect(offeredKeying('RTP/SAVP', [`1 NULL_HMAC_SHA1_80 inline:${CM.b64}`]).kind).toBe('unsupported');
    expect(() => offeredKeying('RTP/SAVP', ['1 AES_CM_128_HMAC_SHA1_80 inline:short'])).toThrow(ProtocolError);
  });
  it('an unsupported keying names no key in its reason', () => {
    const k = offeredKeying('UDP/TLS/RTP/SAVP', [cm]);
    expect(JSON.stringify(k)).not.toContain(CM.b64);
  });
});
