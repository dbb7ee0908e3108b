import { describe, it, expect } from 'vitest';
import { DUPLICATE_WINDOW, jitterClockRate, LegReception, MAX_MISORDER, SourceStats } from '../../../src/rtp/stats.js';

/** Feeds sequence numbers at a steady 20 ms / 160-unit pace (8 kHz, no jitter). */
function feed(s: SourceStats, seqs: number[], startMs = 1000): void {
  for (const seq of seqs) {
    // The sender's timestamp follows the sequence, so arrival = timestamp: zero transit change.
    s.update(seq & 0xffff, (seq * 160) >>> 0, startMs + seq * 20, 8000);
  }
}
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('SourceStats sequence accounting (RFC 3550 A.1, A.3)', () => {
  it('counts a clean stream, the probation packets included', () => {
    const s = new SourceStats(1);
    feed(s, range(100, 149));
    expect(s.valid).toBe(true);
    expect(s.received).toBe(50);
    expect(s.lost).toBe(0);
    expect(s.extendedMax).toBe(149);
  });

  it('stays on probation until two packets are in sequence', () => {
    const s = new SourceStats(1);
    expect(s.update(10, 0, 0, 8000)).toBe('probation');
    expect(s.update(500, 0, 20, 8000)).toBe('probation');
    expect(s.valid).toBe(false);
    expect(s.received).toBe(0);
    expect(s.update(501, 0, 40, 8000)).toBe('valid');
    expect(s.received).toBe(2);
  });

  it('counts loss and the fraction lost per report interval', () => {
    const s = new SourceStats(1);
    feed(s, range(0, 99).filter((q) => q % 10 !== 5)); // 10 lost of 100
    expect(s.lost).toBe(10);
    const b1 = s.reportBlock(3000);
    expect(b1.cumulativeLost).toBe(10);
    expect(b1.fractionLost).toBe(Math.floor((10 * 256) / 100));
    expect(b1.highestSeq).toBe(99);
    feed(s, range(100, 199)); // a clean second interval
    const b2 = s.reportBlock(5000);
    expect(b2.fractionLost).toBe(0);
    expect(b2.cumulativeLost).toBe(10);
    expect(b2.highestSeq).toBe(199);
  });

  it('does not count reordered packets as lost, and duplicates do not push loss below zero', () => {
    const s = new SourceStats(1);
    feed(s, [0, 1, 2, 4, 3, 5, 6]);
    expect(s.lost).toBe(0);
    expect(s.received).toBe(7);
    feed(s, [6, 6, 6, 7]);
    expect(s.received).toBe(11);
    expect(s.lost).toBe(0);
    expect(s.reportBlock(0).cumulativeLost).toBe(-3); // signed on the wire, as the RFC says
  });

  it('extends the sequence across the 65535 wrap', () => {
    const s = new SourceStats(1);
    feed(s, range(65530, 65545).filter((q) => q !== 65537)); // 65536 + 1 lost
    expect(s.extendedMax).toBe(65536 + 9);
    expect(s.lost).toBe(1);
    expect(s.received).toBe(15);
    expect(s.reportBlock(0).highestSeq).toBe(0x0001_0009);
  });

  it('handles a probation run that itself crosses the wrap', () => {
    const s = new SourceStats(1);
    feed(s, [65535, 65536, 65537, 65539]);
    expect(s.received).toBe(4);
    expect(s.lost).toBe(1);
  });

  it('ignores one wild jump but restarts when the next packet confirms it', () => {
    const s = new SourceStats(1);
    feed(s, range(0, 9));
    expect(s.update(40000, 0, 0, 8000)).toBe('bad_jump');
    expect(s.update(10, 1600, 1200, 8000)).toBe('valid');
    expect(s.lost).toBe(0);
    expect(s.update(30000, 0, 0, 8000)).toBe('bad_jump');
    expect(s.update(30001, 0, 0, 8000)).toBe('restart');
    expect(s.update(30002, 0, 0, 8000)).toBe('valid');
    expect(s.received).toBe(11 + 3);
    expect(s.lost).toBe(0);
    expect(s.extendedMax).toBe(30002);
  });

  it('recognises duplicates: counted as received on the wire, but they hide no loss', () => {
    const s = new SourceStats(1);
    const verdicts = [0, 1, 2, 3, 5, 5, 3, 6, 1].map((q) => s.update(q, q * 160, 1000 + q * 20, 8000));
    expect(verdicts).toEqual(['probation', 'valid', 'valid', 'valid', 'valid', 'duplicate', 'duplicate', 'valid', 'duplicate']);
    expect(s.received).toBe(9);
    expect(s.lost).toBe(1); // seq 4
    expect(s.reportBlock(0).cumulativeLost).toBe(7 - 9);
  });

  it('tells a late packet from a duplicate anywhere in the reorder window, across the wrap', () => {
    const s = new SourceStats(1);
    const seqs = range(65409, 65700).filter((q) => q % 7 !== 0);
    feed(s, seqs);
    expect(s.lost).toBe(range(65409, 65700).length - seqs.length);
    // Every missing number within MAX_MISORDER of the top is late, not a duplicate; then it is.
    const missing = range(65700 - MAX_MISORDER + 1, 65700).filter((q) => q % 7 === 0);
    for (const q of missing) expect(s.update(q & 0xffff, q * 160, 0, 8000)).toBe('valid');
    for (const q of missing) expect(s.update(q & 0xffff, q * 160, 0, 8000)).toBe('duplicate');
    expect(s.update(65699 & 0xffff, 0, 0, 8000)).toBe('duplicate');
    expect(s.lost).toBe(range(65409, 65700).length - seqs.length - missing.length);
    expect(DUPLICATE_WINDOW).toBeGreaterThan(MAX_MISORDER);
  });

  it('a duplicate during probation neither counts nor restarts the probation', () => {
    const s = new SourceStats(1);
    expect([7, 7, 8, 9].map((q) => s.update(q, 0, 0, 8000))).toEqual(['probation', 'duplicate', 'valid', 'valid']);
    expect(s.received).toBe(3);
    expect(s.lost).toBe(0);
  });

  it('counts a packet reordered before the first one as received, not as loss', () => {
    const s = new SourceStats(1);
    feed(s, [10, 11, 12, 9, 13]);
    expect(s.lost).toBe(0);
    expect(s.received).toBe(5);
  });

  it('keeps loss counted before a restart', () => {
    const s = new SourceStats(1);
    feed(s, [0, 1, 2, 5, 6]); // 2 lost
    s.update(20000, 0, 0, 8000);
    s.update(20001, 0, 0, 8000);
    expect(s.lost).toBe(2);
  });
});

describe('SourceStats interarrival jitter (RFC 3550 A.8)', () => {
  it('is zero for a perfectly paced stream', () => {
    const s = new SourceStats(1);
    feed(s, range(0, 200));
    expect(s.jitter).toBe(0);
    expect(s.jitterMs).toBe(0);
  });

  it('follows J += (|D| - J) / 16 for alternating late packets', () => {
    const s = new SourceStats(1);
    let expected = 0;
    for (let i = 0; i < 300; i++) {
      const late = i % 2 === 1 ? 5 : 0; // every other packet 5 ms late
      s.update(i, i * 160, 1000 + i * 20 + late, 8000);
      if (i > 0) expected += (40 - expected) / 16; // |D| = 5 ms = 40 units each time
    }
    expect(s.jitter).toBeCloseTo(expected, 9);
    expect(s.jitter).toBeCloseTo(40, 3);
    expect(s.jitterMs).toBeCloseTo(5, 3);
    expect(s.reportBlock(0).jitter).toBe(Math.floor(s.jitter));
  });

  it('is not disturbed by the RTP timestamp wrapping at 2^32', () => {
    const s = new SourceStats(1);
    const base = 0xffffffff - 160 * 10;
    for (let i = 0; i < 40; i++) s.update(i, (base + i * 160) >>> 0, 1000 + i * 20, 8000);
    expect(s.jitter).toBe(0);
  });

  it('skips packets fed with clock rate 0 (RFC 4733 events)', () => {
    const s = new SourceStats(1);
    for (let i = 0; i < 10; i++) s.update(i, 5000, 1000 + i * 50, 0); // repeated timestamp
    expect(s.jitter).toBe(0);
    expect(s.received).toBe(10);
  });
});

describe('SourceStats sender-report bookkeeping', () => {
  it('fills LSR and DLSR from the last SR', () => {
    const s = new SourceStats(1);
    feed(s, range(0, 5));
    expect(s.reportBlock(0)).toMatchObject({ lsr: 0, dlsr: 0 });
    s.onSenderReport({ ntpSeconds: 0x0000abcd, ntpFraction: 0x12340000, rtpTimestamp: 1, arrivalMs: 10_000 });
    const b = s.reportBlock(10_500);
    expect(b.lsr).toBe(0xabcd1234);
    expect(b.dlsr).toBe(32768); // 0.5 s in 1/65536 s
  });
});

describe('LegReception: one leg, several sources', () => {
  it('counts unique packets, loss over every source, SSRCs and both jitter figures', () => {
    const leg = new LegReception();
    for (const q of [0, 1, 2, 4, 4, 5]) leg.update(0xaaaa, q, q * 160, 1000 + q * 20 + (q % 2) * 4, 8000);
    expect(leg.current!.ssrc).toBe(0xaaaa);
    for (const q of [0, 1, 2, 3, 5]) leg.update(0xbbbb, 100 + q, 9000 + q * 160, 2000 + q * 20, 8000);
    expect(leg.packets).toBe(5 + 5);
    expect(leg.lost).toBe(1 + 1);
    expect(leg.ssrcs).toBe(2);
    expect(leg.current!.ssrc).toBe(0xbbbb);
    expect(leg.source(0xaaaa)!.lost).toBe(1);
    // The live figure is the current source's estimate; the stored one the mean over packets.
    expect(leg.jitterMs).toBe(leg.current!.jitterMs);
    expect(leg.meanJitterMs).toBeGreaterThan(0);
    expect(leg.meanJitterMs).not.toBe(leg.jitterMs);
  });

  it('forgets the least recently heard source past its limit, keeping its loss', () => {
    const leg = new LegReception(2);
    for (const q of [0, 1, 3]) leg.update(1, q, q * 160, 1000 + q, 8000); // one lost
    for (const q of [0, 1]) leg.update(2, q, q * 160, 2000 + q, 8000);
    for (const q of [0, 1]) leg.update(3, q, q * 160, 3000 + q, 8000);
    expect(leg.source(1)).toBeUndefined();
    expect([...leg.tracked()].map((s) => s.ssrc)).toEqual([2, 3]);
    expect(leg.lost).toBe(1);
    expect(leg.ssrcs).toBe(3);
  });

  it('leaves telephone-events out of the jitter', () => {
    expect(jitterClockRate({ pt: 101, codec: 'TELEPHONE-EVENT', clockRate: 8000, channels: 1 })).toBe(0);
    expect(jitterClockRate({ pt: 9, codec: 'G722', clockRate: 8000, channels: 1 })).toBe(8000);
    const leg = new LegReception();
    for (let k = 0; k < 10; k++) leg.update(1, k, 5000, 1000 + 50 * k, 0);
    expect(leg.packets).toBe(10);
    expect(leg.meanJitterMs).toBe(0);
  });
});
