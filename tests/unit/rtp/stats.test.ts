import { describe, it, expect } from 'vitest';
import { SourceStats } from '../../../src/rtp/stats.js';

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
