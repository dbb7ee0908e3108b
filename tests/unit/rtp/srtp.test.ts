import { describe, it, expect } from 'vitest';
import { inspect } from 'node:util';
import { SRTP_DROP_REASONS, SrtpSession, type SrtpPolicy, type SrtpResult } from '../../../src/rtp/srtp.js';
import { SRTP_SUITES, SRTP_SUITE_NAMES, type SrtpSuiteName } from '../../../src/rtp/srtp-suites.js';
import { guessRoc, ReplayWindow } from '../../../src/rtp/srtp-replay.js';
import { looksLikeRtcp, newRtpHeader, readRtpHeader } from '../../../src/rtp/packet.js';

/** A deterministic master key for `suite` (distinct per `seed`). */
function keyFor(suite: SrtpSuiteName, seed = 1): { key: Buffer; salt: Buffer } {
  const s = SRTP_SUITES[suite];
  const bytes = Buffer.alloc(s.keyBytes + s.saltBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return { key: bytes.subarray(0, s.keyBytes), salt: bytes.subarray(s.keyBytes) };
}

function pair(policy: SrtpPolicy): { tx: SrtpSession; rx: SrtpSession } {
  return { tx: new SrtpSession(policy), rx: new SrtpSession(policy) };
}

/** 20 ms of G.711: 12-octet header + 160 octets. */
function rtp(seq: number, ssrc = 0x11223344, opts: { csrc?: number; extension?: boolean; padding?: number } = {}): Buffer {
  const csrc = opts.csrc ?? 0;
  const ext = opts.extension ? 8 : 0;
  const pad = opts.padding ?? 0;
  const b = Buffer.alloc(12 + csrc * 4 + ext + 160 + pad);
  b[0] = 0x80 | (pad > 0 ? 0x20 : 0) | (opts.extension ? 0x10 : 0) | csrc;
  b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  let at = 12;
  for (let i = 0; i < csrc; i++, at += 4) b.writeUInt32BE(0xc0000000 + i, at);
  if (opts.extension) {
    b.writeUInt16BE(0xbede, at);
    b.writeUInt16BE(1, at + 2);
    b.writeUInt32BE(0x10ff0000, at + 4);
    at += 8;
  }
  for (let i = 0; i < 160; i++) b[at + i] = (seq + i) & 0xff;
  if (pad > 0) b[b.length - 1] = pad;
  return b;
}

/** An RTCP receiver report with one SDES chunk, from `ssrc`. */
function rtcp(ssrc = 0x11223344): Buffer {
  const rr = Buffer.alloc(8);
  rr[0] = 0x80;
  rr[1] = 201;
  rr.writeUInt16BE(1, 2);
  rr.writeUInt32BE(ssrc, 4);
  const sdes = Buffer.from([0x81, 202, 0, 3, 0, 0, 0, 0, 1, 3, 0x61, 0x62, 0x63, 0, 0, 0]);
  sdes.writeUInt32BE(ssrc, 4);
  return Buffer.concat([rr, sdes]);
}

function expectPlain(r: SrtpResult, plain: Buffer): void {
  expect(r.ok).toBe(true);
  if (r.ok) expect(r.packet.toString('hex')).toBe(plain.toString('hex'));
}

const reason = (r: SrtpResult): string => (r.ok ? 'ok' : r.reason);

describe('SrtpSession round trips', () => {
  for (const suite of SRTP_SUITE_NAMES) {
    it(`${suite}: RTP and RTCP, CSRCs, header extension and padding survive`, () => {
      const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
      const s = SRTP_SUITES[suite];
      for (let seq = 100; seq < 110; seq++) {
        const plain = rtp(seq, 0x11223344, { csrc: seq % 3, extension: seq % 2 === 0, padding: seq % 4 === 0 ? 4 : 0 });
        const wire = tx.protectRtp(plain);
        expect(wire.length).toBe(plain.length + s.srtpTagBytes);
        const hdrLen = 12 + (seq % 3) * 4 + (seq % 2 === 0 ? 8 : 0);
        expect(wire.subarray(0, hdrLen)).toEqual(plain.subarray(0, hdrLen));
        expect(wire.subarray(hdrLen, plain.length)).not.toEqual(plain.subarray(hdrLen));
        const r = rx.unprotectRtp(wire);
        expectPlain(r, plain);
        // The plain packet is a view of the received buffer, and the RTP parser reads it.
        if (r.ok) {
          expect(r.packet.buffer).toBe(wire.buffer);
          const h = newRtpHeader();
          expect(readRtpHeader(r.packet, r.packet.length, h)).toBeNull();
          expect(h.sequence).toBe(seq);
          expect(h.payloadLength).toBe(160);
        }
      }
      for (let i = 0; i < 3; i++) {
        const plain = rtcp();
        const wire = tx.protectRtcp(plain);
        expect(wire.length).toBe(plain.length + 4 + s.srtcpTagBytes);
        expect(wire.readUInt32BE(wire.length - 4 - (s.transform === 'cm' ? s.srtcpTagBytes : 0))).toBe((0x80000000 | (i + 1)) >>> 0);
        expectPlain(rx.unprotectRtcp(wire), plain);
      }
    });
  }

  it('another key does not authenticate', () => {
    const tx = new SrtpSession({ suite: 'AES_CM_128_HMAC_SHA1_80', keys: [keyFor('AES_CM_128_HMAC_SHA1_80', 1)] });
    const rx = new SrtpSession({ suite: 'AES_CM_128_HMAC_SHA1_80', keys: [keyFor('AES_CM_128_HMAC_SHA1_80', 2)] });
    expect(reason(rx.unprotectRtp(tx.protectRtp(rtp(1))))).toBe('auth_failed');
    expect(reason(rx.unprotectRtcp(tx.protectRtcp(rtcp())))).toBe('auth_failed');
  });
});

describe('rollover counter', () => {
  for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM'] as const) {
    it(`${suite}: crosses 65535 → 0 twice, in order`, () => {
      const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
      for (let n = 0; n < 2 * 65536 + 40; n += 997) {
        // Sparse but each step < 2^15, so the sender and the receiver both follow the wraps.
        const seq = (65500 + n) & 0xffff;
        const plain = rtp(seq);
        expectPlain(rx.unprotectRtp(tx.protectRtp(plain)), plain);
      }
    });

    it(`${suite}: packets reordered around the wrap decrypt, late ones from the old ROC too`, () => {
      const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
      const seqs = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3];
      const wire = new Map(seqs.map((s) => [s, tx.protectRtp(rtp(s))]));
      for (const s of [65530, 65531, 0, 65533, 1, 65532, 2, 65535, 65534, 3]) {
        expectPlain(rx.unprotectRtp(Buffer.from(wire.get(s)!)), rtp(s));
      }
      // Every one of them again is a replay, on either side of the wrap.
      for (const s of seqs) expect(reason(rx.unprotectRtp(Buffer.from(wire.get(s)!)))).toBe('replayed');
    });
  }

  it('guessRoc follows RFC 3711 Appendix A', () => {
    expect(guessRoc(0, 100, 101)).toBe(0);
    expect(guessRoc(0, 100, 65000)).toBe(-1);
    expect(guessRoc(3, 100, 65000)).toBe(2);
    expect(guessRoc(3, 65000, 10)).toBe(4);
    expect(guessRoc(3, 65000, 40000)).toBe(3);
  });
});

describe('replay window', () => {
  it('refuses a repeated packet and one older than the window', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)], replayWindow: 64 });
    const first = tx.protectRtp(rtp(1000));
    expectPlain(rx.unprotectRtp(Buffer.from(first)), rtp(1000));
    expect(reason(rx.unprotectRtp(Buffer.from(first)))).toBe('replayed');
    const skipped = tx.protectRtp(rtp(1001));
    for (let s = 1002; s < 1100; s++) rx.unprotectRtp(tx.protectRtp(rtp(s)));
    // 1001 was never seen, but it is now more than 64 packets behind.
    expect(reason(rx.unprotectRtp(skipped))).toBe('replayed');
  });

  it('a replayed packet leaves the state as it was: the next packet still passes', () => {
    const suite = 'AEAD_AES_256_GCM';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
    const a = tx.protectRtp(rtp(5));
    const b = tx.protectRtp(rtp(6));
    expect(rx.unprotectRtp(Buffer.from(a)).ok).toBe(true);
    expect(reason(rx.unprotectRtp(Buffer.from(a)))).toBe('replayed');
    expect(rx.unprotectRtp(b).ok).toBe(true);
  });

  it('SRTCP: a repeated index is refused', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_32';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
    const w = tx.protectRtcp(rtcp());
    expect(rx.unprotectRtcp(Buffer.from(w)).ok).toBe(true);
    expect(reason(rx.unprotectRtcp(Buffer.from(w)))).toBe('replayed');
    expect(rx.unprotectRtcp(tx.protectRtcp(rtcp())).ok).toBe(true);
  });

  it('ReplayWindow: ahead, inside, behind', () => {
    const w = new ReplayWindow(64);
    expect(w.check(0)).toBe(true);
    w.accept(0);
    w.accept(10);
    expect(w.check(10)).toBe(false);
    expect(w.check(5)).toBe(true);
    w.accept(200);
    expect(w.check(136)).toBe(false);
    expect(w.check(137)).toBe(true);
    expect(w.highest).toBe(200);
    expect(() => new ReplayWindow(32)).toThrow(RangeError);
  });
});

describe('refusals', () => {
  for (const suite of SRTP_SUITE_NAMES) {
    it(`${suite}: each flipped bit of a packet is refused before decryption`, () => {
      const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
      const wire = tx.protectRtp(rtp(7));
      for (const at of [1, 3, 9, 12, 100, wire.length - 1]) {
        const bad = Buffer.from(wire);
        bad[at]! ^= 0x04;
        const before = Buffer.from(bad);
        expect(reason(rx.unprotectRtp(bad))).toBe('auth_failed');
        expect(bad).toEqual(before); // nothing decrypted in place
      }
      const rtcpWire = tx.protectRtcp(rtcp());
      rtcpWire[10]! ^= 0x80;
      expect(reason(rx.unprotectRtcp(rtcpWire))).toBe('auth_failed');
      // The original still passes: the forgeries moved no state.
      expect(rx.unprotectRtp(wire).ok).toBe(true);
    });
  }

  it('truncated packets are too_short, never a throw', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
    const wire = tx.protectRtp(rtp(1));
    for (const n of [0, 1, 11, 12, 21]) expect(reason(rx.unprotectRtp(wire.subarray(0, n)))).toBe('too_short');
    expect(reason(rx.unprotectRtp(wire.subarray(0, 40)))).toBe('auth_failed');
    const rw = tx.protectRtcp(rtcp());
    for (const n of [0, 7, 21]) expect(reason(rx.unprotectRtcp(rw.subarray(0, n)))).toBe('too_short');
  });

  it('bad version and a header longer than the packet', () => {
    const suite = 'AEAD_AES_128_GCM';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)] });
    const wire = tx.protectRtp(rtp(1));
    const v1 = Buffer.from(wire);
    v1[0] = 0x40;
    expect(reason(rx.unprotectRtp(v1))).toBe('bad_version');
    const cc = Buffer.from(wire.subarray(0, 40));
    cc[0] = 0x8f; // 15 CSRCs = 72 octets of header
    expect(reason(rx.unprotectRtp(cc))).toBe('bad_header');
  });
});

describe('MKI and several master keys', () => {
  it('the MKI selects the key; an unknown MKI is bad_mki', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const policy: SrtpPolicy = {
      suite,
      mkiLength: 2,
      keys: [
        { ...keyFor(suite, 1), mki: Buffer.from([0, 1]) },
        { ...keyFor(suite, 2), mki: Buffer.from([0, 2]) },
      ],
    };
    const { tx, rx } = pair(policy);
    const w1 = tx.protectRtp(rtp(1), 0);
    const w2 = tx.protectRtp(rtp(2), 1);
    expect(w1.length).toBe(rtp(1).length + 2 + 10);
    expect(w1.subarray(w1.length - 12, w1.length - 10)).toEqual(Buffer.from([0, 1]));
    expectPlain(rx.unprotectRtp(w1), rtp(1));
    expectPlain(rx.unprotectRtp(w2), rtp(2));
    const w3 = tx.protectRtp(rtp(3), 1);
    w3[w3.length - 11] = 9;
    expect(reason(rx.unprotectRtp(w3))).toBe('bad_mki');
    const c = tx.protectRtcp(rtcp(), 1);
    expectPlain(rx.unprotectRtcp(c), rtcp());
  });

  it('GCM puts the MKI after the tag', () => {
    const suite = 'AEAD_AES_128_GCM';
    const { tx, rx } = pair({ suite, mkiLength: 1, keys: [{ ...keyFor(suite), mki: Buffer.from([7]) }] });
    const w = tx.protectRtp(rtp(1));
    expect(w[w.length - 1]).toBe(7);
    expectPlain(rx.unprotectRtp(w), rtp(1));
    const c = tx.protectRtcp(rtcp());
    expect(c[c.length - 1]).toBe(7);
    expectPlain(rx.unprotectRtcp(c), rtcp());
  });

  it('a key past its lifetime is refused', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_32';
    const { tx, rx } = pair({ suite, keys: [{ ...keyFor(suite), lifetime: 3 }] });
    const wires = [1, 2, 3, 4].map((s) => tx.protectRtp(rtp(s)));
    expect(wires.slice(0, 3).map((w) => reason(rx.unprotectRtp(w)))).toEqual(['ok', 'ok', 'ok']);
    expect(reason(rx.unprotectRtp(wires[3]!))).toBe('key_expired');
  });
});

describe('session parameters', () => {
  it('UNENCRYPTED_SRTP: payload in clear but authenticated', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)], unencryptedSrtp: true });
    const plain = rtp(9);
    const w = tx.protectRtp(plain);
    expect(w.subarray(0, plain.length)).toEqual(plain);
    const bad = Buffer.from(w);
    bad[50]! ^= 1;
    expect(reason(rx.unprotectRtp(bad))).toBe('auth_failed');
    expectPlain(rx.unprotectRtp(w), plain);
  });

  it('UNENCRYPTED_SRTCP: E flag clear, index and tag still there', () => {
    for (const suite of ['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_256_GCM'] as const) {
      const { tx, rx } = pair({ suite, keys: [keyFor(suite)], unencryptedSrtcp: true });
      const plain = rtcp();
      const w = tx.protectRtcp(plain);
      expect(w.subarray(0, plain.length)).toEqual(plain);
      const word = SRTP_SUITES[suite].transform === 'cm' ? w.readUInt32BE(plain.length) : w.readUInt32BE(w.length - 4);
      expect(word).toBe(1);
      expectPlain(rx.unprotectRtcp(w), plain);
      // RTP is still encrypted.
      expect(tx.protectRtp(rtp(1)).subarray(12, 172)).not.toEqual(rtp(1).subarray(12));
    }
  });

  it('UNAUTHENTICATED_SRTP: no RTP tag, SRTCP still authenticated', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)], unauthenticatedSrtp: true });
    const w = tx.protectRtp(rtp(3));
    expect(w.length).toBe(rtp(3).length);
    expectPlain(rx.unprotectRtp(w), rtp(3));
    const c = tx.protectRtcp(rtcp());
    expect(c.length).toBe(rtcp().length + 4 + 10);
    c[12]! ^= 1;
    expect(reason(rx.unprotectRtcp(c))).toBe('auth_failed');
    expect(() => new SrtpSession({ suite: 'AEAD_AES_128_GCM', keys: [keyFor('AEAD_AES_128_GCM')], unauthenticatedSrtp: true })).toThrow(
      RangeError,
    );
  });

  it('key derivation rate: keys change every KDR packets and both sides follow', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)], keyDerivationRate: 4 });
    const plain = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((s) => rtp(s));
    const wires = plain.map((p) => tx.protectRtp(p));
    for (let i = 0; i < wires.length; i++) expectPlain(rx.unprotectRtp(wires[i]!), plain[i]!);
    const once = new SrtpSession({ suite, keys: [keyFor(suite)] });
    // Index 9 is past r = 1: the once-derived keys no longer fit.
    expect(once.protectRtp(rtp(9)).equals(new SrtpSession({ suite, keys: [keyFor(suite)], keyDerivationRate: 4 }).protectRtp(rtp(9)))).toBe(false);
  });
});

describe('SSRC changes', () => {
  it('a new SSRC gets its own rollover counter and window; old state is capped', () => {
    const suite = 'AEAD_AES_128_GCM';
    const { tx, rx } = pair({ suite, keys: [keyFor(suite)], maxSources: 2 });
    const a = tx.protectRtp(rtp(65535, 0xa));
    const b = tx.protectRtp(rtp(10, 0xb));
    expect(rx.unprotectRtp(a).ok).toBe(true);
    expect(rx.unprotectRtp(b).ok).toBe(true);
    expect(rx.unprotectRtp(tx.protectRtp(rtp(0, 0xa))).ok).toBe(true); // 0xa wrapped, 0xb did not
    expect(rx.unprotectRtp(tx.protectRtp(rtp(11, 0xb))).ok).toBe(true);
    expect(rx.unprotectRtp(tx.protectRtp(rtp(1, 0xc))).ok).toBe(true);
    expect(rx.sources).toBe(2);
  });
});

describe('secrets stay inside', () => {
  it('toString, JSON and inspect name the suite only', () => {
    const k = keyFor('AES_CM_128_HMAC_SHA1_80');
    const s = new SrtpSession({ suite: 'AES_CM_128_HMAC_SHA1_80', keys: [k] });
    for (const text of [String(s), JSON.stringify(s), inspect(s, { depth: 5, showHidden: true })]) {
      expect(text).toContain('AES_CM_128_HMAC_SHA1_80');
      expect(text).not.toContain(k.key.toString('hex'));
      expect(text).not.toContain(k.key.toString('base64').slice(0, 12));
    }
  });

  it('policy errors never quote key material', () => {
    const k = keyFor('AES_CM_128_HMAC_SHA1_80');
    const bad = () => new SrtpSession({ suite: 'AEAD_AES_256_GCM', keys: [k] });
    expect(bad).toThrow(RangeError);
    try {
      bad();
    } catch (e) {
      expect(String(e)).not.toContain(k.key.toString('hex'));
    }
  });
});

describe('hostile input', () => {
  it('random and mangled datagrams get a reason, never a throw', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (const suite of SRTP_SUITE_NAMES) {
      for (const mkiLength of [0, 2]) {
        const policy: SrtpPolicy = {
          suite, mkiLength, keys: [{ ...keyFor(suite), ...(mkiLength ? { mki: Buffer.from([0, 9]) } : {}) }],
        };
        const { tx, rx } = pair(policy);
        const good = [tx.protectRtp(rtp(1, 1, { csrc: 2, extension: true })), tx.protectRtcp(rtcp())];
        for (let i = 0; i < 300; i++) {
          const base = good[i % 2]!;
          const b = i % 3 === 0 ? Buffer.alloc(rand() % 80) : Buffer.from(base.subarray(0, rand() % (base.length + 1)));
          for (let j = 0; j < b.length; j++) if (i % 3 === 0 || rand() % 7 === 0) b[j] = rand() & 0xff;
          if (b.length > 0 && rand() % 2 === 0) b[0] = 0x80 | (rand() & 0x3f);
          const r1 = rx.unprotectRtp(Buffer.from(b));
          const r2 = rx.unprotectRtcp(Buffer.from(b));
          for (const r of [r1, r2]) if (!r.ok) expect(SRTP_DROP_REASONS).toContain(r.reason);
        }
      }
    }
  });

  it('the SRTCP index keeps counting per SSRC while other SSRCs come and go', () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    const tx = new SrtpSession({ suite, keys: [keyFor(suite)], maxSources: 2 });
    const indexOf = (w: Buffer): number => w.readUInt32BE(w.length - 14) & 0x7fffffff;
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      seen.push(indexOf(tx.protectRtcp(rtcp(0xa))));
      seen.push(indexOf(tx.protectRtcp(rtcp(0xb))));
    }
    expect(seen).toEqual([1, 1, 2, 2, 3, 3]);
    expect(indexOf(tx.protectRtcp(rtcp(0xa), 0, 0x1234))).toBe(0x1234);
  });
});

describe('demultiplexing', () => {
  it('SRTP and SRTCP keep their headers in clear, so RFC 5761 demux still tells them apart', () => {
    for (const suite of SRTP_SUITE_NAMES) {
      const tx = new SrtpSession({ suite, keys: [keyFor(suite)] });
      expect(looksLikeRtcp(tx.protectRtcp(rtcp()))).toBe(true);
      expect(looksLikeRtcp(tx.protectRtp(rtp(1)))).toBe(false);
    }
  });
});
