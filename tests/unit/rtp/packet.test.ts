import { describe, it, expect } from 'vitest';
import { looksLikeRtcp, newRtpHeader, readRtpHeader } from '../../../src/rtp/packet.js';
import { prng, rtpPacket, senderReport } from './fixtures.js';

describe('readRtpHeader', () => {
  it('reads the fixed header fields', () => {
    const buf = rtpPacket({ pt: 8, seq: 65535, ts: 0xfffffff0, ssrc: 0x89abcdef, marker: true });
    const h = newRtpHeader();
    expect(readRtpHeader(buf, buf.length, h)).toBeNull();
    expect(h).toEqual({
      version: 2, padding: false, extension: false, marker: true, payloadType: 8,
      sequence: 65535, timestamp: 0xfffffff0, ssrc: 0x89abcdef, payloadOffset: 12, payloadLength: 160,
    });
  });

  it('skips CSRCs, the header extension and padding', () => {
    const payload = Buffer.from('0123456789');
    const buf = rtpPacket({ seq: 1, ts: 2, ssrc: 3, csrcs: [10, 11, 12], extension: { profile: 0xbede, words: 2 }, payload, padding: 6 });
    const h = newRtpHeader();
    expect(readRtpHeader(buf, buf.length, h)).toBeNull();
    expect(h.padding).toBe(true);
    expect(h.extension).toBe(true);
    expect(h.payloadOffset).toBe(12 + 12 + 4 + 8);
    expect(h.payloadLength).toBe(10);
    expect(buf.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength).toString()).toBe('0123456789');
  });

  it('reuses the header object it is given', () => {
    const h = newRtpHeader();
    const a = rtpPacket({ seq: 1, ts: 1, ssrc: 1 });
    const b = rtpPacket({ seq: 2, ts: 2, ssrc: 2, pt: 101 });
    readRtpHeader(a, a.length, h);
    readRtpHeader(b, b.length, h);
    expect([h.sequence, h.ssrc, h.payloadType]).toEqual([2, 2, 101]);
  });

  it('honours the length argument rather than the buffer size', () => {
    const buf = Buffer.concat([rtpPacket({ seq: 1, ts: 1, ssrc: 1, payload: Buffer.alloc(20) }), Buffer.alloc(100)]);
    const h = newRtpHeader();
    expect(readRtpHeader(buf, 32, h)).toBeNull();
    expect(h.payloadLength).toBe(20);
    expect(readRtpHeader(buf, 11, h)).toBe('too_short');
  });

  it('names the reason for each malformed header', () => {
    const h = newRtpHeader();
    const check = (buf: Buffer): string | null => readRtpHeader(buf, buf.length, h);
    expect(check(Buffer.alloc(0))).toBe('too_short');
    expect(check(Buffer.alloc(11, 0x80))).toBe('too_short');
    const v1 = rtpPacket({ seq: 1, ts: 1, ssrc: 1 });
    v1[0] = 0x40;
    expect(check(v1)).toBe('bad_version');
    // 15 CSRCs claimed, header only 12 + 8 bytes long.
    const csrc = rtpPacket({ seq: 1, ts: 1, ssrc: 1, payload: Buffer.alloc(8) });
    csrc[0] = 0x8f;
    expect(check(csrc)).toBe('bad_header');
    // Extension flag with fewer than 4 bytes after the fixed header.
    const extShort = Buffer.alloc(14);
    extShort[0] = 0x90;
    expect(check(extShort)).toBe('bad_header');
    // Extension length running past the end.
    const extLong = rtpPacket({ seq: 1, ts: 1, ssrc: 1, extension: { profile: 0xbede, words: 1 }, payload: Buffer.alloc(4) });
    extLong.writeUInt16BE(50, 14);
    expect(check(extLong)).toBe('bad_header');
    // Padding count zero, and padding longer than the payload.
    const pad0 = rtpPacket({ seq: 1, ts: 1, ssrc: 1, payload: Buffer.alloc(4), padding: 4 });
    pad0[pad0.length - 1] = 0;
    expect(check(pad0)).toBe('bad_header');
    const padBig = rtpPacket({ seq: 1, ts: 1, ssrc: 1, payload: Buffer.alloc(4), padding: 4 });
    padBig[padBig.length - 1] = 9;
    expect(check(padBig)).toBe('bad_header');
    // Padding that exactly consumes the payload is legal (an empty payload).
    const padAll = rtpPacket({ seq: 1, ts: 1, ssrc: 1, payload: Buffer.alloc(4), padding: 4 });
    padAll[padAll.length - 1] = 8;
    expect(check(padAll)).toBeNull();
    expect(h.payloadLength).toBe(0);
  });

  it('never throws and never reports a payload outside the buffer (fuzz)', () => {
    const rnd = prng(0x7a11e);
    const h = newRtpHeader();
    let ok = 0;
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rnd() * 80);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
      // Half the time force version 2 so the deeper checks are reached.
      if (len > 0 && rnd() < 0.5) buf[0] = (buf[0]! & 0x3f) | 0x80;
      const claimed = rnd() < 0.1 ? len + 50 : len;
      const reason = readRtpHeader(buf, claimed, h);
      if (reason === null) {
        ok++;
        expect(h.payloadOffset).toBeGreaterThanOrEqual(12);
        expect(h.payloadLength).toBeGreaterThanOrEqual(0);
        expect(h.payloadOffset + h.payloadLength).toBeLessThanOrEqual(len);
      }
    }
    // The fuzz must exercise the accepting path too, or it proves little.
    expect(ok).toBeGreaterThan(100);
  });
});

describe('looksLikeRtcp', () => {
  it('tells RTCP from RTP by the second octet (RFC 5761)', () => {
    expect(looksLikeRtcp(senderReport(1, 2, 3, 4, 5, 6))).toBe(true);
    expect(looksLikeRtcp(rtpPacket({ pt: 0, seq: 1, ts: 1, ssrc: 1 }))).toBe(false);
    expect(looksLikeRtcp(rtpPacket({ pt: 101, marker: true, seq: 1, ts: 1, ssrc: 1 }))).toBe(false);
    expect(looksLikeRtcp(rtpPacket({ pt: 96, marker: true, seq: 1, ts: 1, ssrc: 1 }))).toBe(false);
    expect(looksLikeRtcp(Buffer.from([0x80, 223]))).toBe(true);
    expect(looksLikeRtcp(Buffer.from([0x80, 224]))).toBe(false);
    expect(looksLikeRtcp(Buffer.from([0x40, 200]))).toBe(false);
    expect(looksLikeRtcp(Buffer.from([0x80]))).toBe(false);
  });
});
