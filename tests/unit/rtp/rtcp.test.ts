import { describe, it, expect } from 'vitest';
import { buildReceiverReport, ntpMiddle32, ntpToEpochMs, parseRtcp, type ReportBlock } from '../../../src/rtp/rtcp.js';
import { prng, senderReport } from './fixtures.js';

const block = (over: Partial<ReportBlock> = {}): ReportBlock => ({
  ssrc: 0xcafebabe, fractionLost: 25, cumulativeLost: 1234, highestSeq: 0x0001_0005,
  jitter: 77, lsr: 0x12345678, dlsr: 65536 * 2, ...over,
});

describe('buildReceiverReport', () => {
  it('round-trips through parseRtcp with one block per source and an SDES CNAME', () => {
    const blocks = [block(), block({ ssrc: 7, cumulativeLost: -3, fractionLost: 0, lsr: 0, dlsr: 0 })];
    const buf = buildReceiverReport(0x11223344, 'tallenne@abcdef', blocks);
    expect(buf.length % 4).toBe(0);
    const parsed = parseRtcp(buf);
    expect(parsed).not.toBeNull();
    expect(parsed!.map((p) => p.type)).toEqual(['rr', 'sdes']);
    expect(parsed![0]).toEqual({ type: 'rr', ssrc: 0x11223344, reports: blocks });
    expect(parsed![1]).toEqual({ type: 'sdes', ssrcs: [0x11223344] });
  });

  it('lays out the wire format of RFC 3550 §6.4.2 and §6.5', () => {
    const buf = buildReceiverReport(1, 'ab', [block({ cumulativeLost: -1 })]);
    expect(buf[0]).toBe(0x81); // V=2, RC=1
    expect(buf[1]).toBe(201);
    expect(buf.readUInt16BE(2)).toBe(7); // (8 + 24) / 4 - 1
    expect(buf.readUIntBE(8 + 5, 3)).toBe(0xffffff); // -1 as signed 24-bit
    const sdes = buf.subarray(32);
    expect(sdes[0]).toBe(0x81); // V=2, SC=1
    expect(sdes[1]).toBe(202);
    expect(sdes[8]).toBe(1); // CNAME
    expect(sdes[9]).toBe(2);
    expect(sdes.subarray(10, 12).toString()).toBe('ab');
    expect(sdes[12]).toBe(0); // END
    expect(sdes.length).toBe(16);
  });

  it('clamps cumulative loss to 24 bits and caps blocks at 31', () => {
    const many = Array.from({ length: 40 }, (_, i) => block({ ssrc: i, cumulativeLost: i === 0 ? 1e9 : -1e9 }));
    const parsed = parseRtcp(buildReceiverReport(5, 'x', many))!;
    const rr = parsed[0]!;
    expect(rr.type).toBe('rr');
    if (rr.type !== 'rr') return;
    expect(rr.reports.length).toBe(31);
    expect(rr.reports[0]!.cumulativeLost).toBe(0x7fffff);
    expect(rr.reports[1]!.cumulativeLost).toBe(-0x800000);
  });

  it('builds an empty RR when no source was heard', () => {
    const parsed = parseRtcp(buildReceiverReport(9, 'tallenne@x', []))!;
    expect(parsed[0]).toEqual({ type: 'rr', ssrc: 9, reports: [] });
  });
});

describe('parseRtcp', () => {
  it('reads a sender report with its NTP/RTP timestamp pair', () => {
    const ntpSec = 3_900_000_000;
    const parsed = parseRtcp(senderReport(0xabcdef01, ntpSec, 0x80000000, 123456, 50, 8000))!;
    expect(parsed[0]).toEqual({
      type: 'sr', ssrc: 0xabcdef01, ntpSeconds: ntpSec, ntpFraction: 0x80000000,
      rtpTimestamp: 123456, packetCount: 50, octetCount: 8000, reports: [],
    });
    expect(parsed[1]).toEqual({ type: 'sdes', ssrcs: [0xabcdef01] });
    expect(ntpToEpochMs(ntpSec, 0x80000000)).toBe((ntpSec - 2_208_988_800) * 1000 + 500);
    expect(ntpMiddle32(0x1234abcd, 0x5678ef01)).toBe(0xabcd5678);
  });

  it('reads BYE and recognises other packet types without interpreting them', () => {
    const bye = Buffer.from([0x81, 203, 0, 2, 0, 0, 0, 42, 3, 0x61, 0x62, 0x63]);
    expect(parseRtcp(bye)).toEqual([{ type: 'bye', ssrcs: [42] }]);
    const app = Buffer.from([0x80, 204, 0, 2, 0, 0, 0, 1, 0x41, 0x42, 0x43, 0x44]);
    expect(parseRtcp(app)).toEqual([{ type: 'other', packetType: 204 }]);
  });

  it('rejects malformed packets', () => {
    const good = senderReport(1, 2, 3, 4, 5, 6);
    expect(parseRtcp(good)).not.toBeNull();
    const v1 = Buffer.from(good);
    v1[0] = 0x40;
    expect(parseRtcp(v1)).toBeNull();
    const longLen = Buffer.from(good);
    longLen.writeUInt16BE(100, 2);
    expect(parseRtcp(longLen)).toBeNull();
    const tooManyBlocks = Buffer.from(good);
    tooManyBlocks[0] = 0x83; // claims 3 report blocks in a 28-byte SR
    expect(parseRtcp(tooManyBlocks)).toBeNull();
    expect(parseRtcp(good.subarray(0, 30))).toBeNull(); // trailing partial packet
    expect(parseRtcp(Buffer.from([0x80, 100, 0, 0]))).toBeNull(); // not an RTCP type
    expect(parseRtcp(Buffer.alloc(3))).toBeNull();
    // Padding bit on a packet that is not the last of the compound.
    const padFirst = Buffer.from(good);
    padFirst[0] = 0xa0;
    expect(parseRtcp(padFirst)).toBeNull();
    // SDES item running past its packet.
    const sdes = Buffer.from(good.subarray(28));
    sdes[9] = 40;
    expect(parseRtcp(sdes)).toBeNull();
  });

  it('never throws on random bytes (fuzz)', () => {
    const rnd = prng(0xc0ffee);
    let parsedSome = 0;
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rnd() * 96);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = Math.floor(rnd() * 256);
      if (len >= 4) {
        // Plausible headers so the per-type parsers run: V=2, an RTCP type, a fitting length.
        buf[0] = 0x80 | (buf[0]! & 0x3f);
        buf[1] = 200 + Math.floor(rnd() * 5);
        buf.writeUInt16BE(Math.floor(len / 4) - 1 + (rnd() < 0.2 ? 1 : 0), 2);
      }
      const out = parseRtcp(buf);
      if (out) parsedSome++;
    }
    expect(parsedSome).toBeGreaterThan(50);
  });
});
