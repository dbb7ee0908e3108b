import { describe, expect, it } from 'vitest';
import { LegPlacer, SenderReportAligner, SR_MAX_SHIFT_MS } from '../../../src/encoder/timeline.js';

const T0 = 1_800_000_000_000;
const RATE = 8000;

/** Two legs sent by one SRC: both first packets leave at T0+100 ms on its clock (NTP = ours + 5 s). */
function sameClock(delayA: number, delayB: number): SenderReportAligner {
  const a = new SenderReportAligner();
  const clockAhead = 5000;
  a.noteFirstPacket(0, 0xaaaa, 1000, T0 + 100 + delayA, RATE);
  a.noteFirstPacket(1, 0xbbbb, 90_000, T0 + 100 + delayB, RATE);
  // SRs a second later: timestamp 1 s (8000 ticks) past each first packet.
  a.noteSenderReport(0, { ssrc: 0xaaaa, ntpMs: T0 + 1100 + clockAhead, rtpTimestamp: 9000 });
  a.noteSenderReport(1, { ssrc: 0xbbbb, ntpMs: T0 + 1100 + clockAhead, rtpTimestamp: 98_000 });
  return a;
}

describe('SenderReportAligner', () => {
  it('moves back the leg whose first packet arrived late, by how late it was', () => {
    const shifts = sameClock(20, 100).shifts();
    expect([...shifts.entries()]).toEqual([[1, { ssrc: 0xbbbb, shiftMs: -80 }]]);
  });

  it('needs a sender report on two legs', () => {
    const a = new SenderReportAligner();
    a.noteFirstPacket(0, 1, 0, T0, RATE);
    a.noteFirstPacket(1, 2, 0, T0 + 90, RATE);
    a.noteSenderReport(0, { ssrc: 1, ntpMs: T0 + 3000, rtpTimestamp: 8000 });
    expect(a.shifts().size).toBe(0);
  });

  it('ignores a report of another SSRC than the first packet, and clocks that disagree', () => {
    const other = new SenderReportAligner();
    other.noteFirstPacket(0, 1, 0, T0, RATE);
    other.noteFirstPacket(1, 2, 0, T0 + 90, RATE);
    other.noteSenderReport(0, { ssrc: 1, ntpMs: T0, rtpTimestamp: 0 });
    other.noteSenderReport(1, { ssrc: 3, ntpMs: T0, rtpTimestamp: 0 });
    expect(other.shifts().size).toBe(0);

    // Two senders whose clocks are 2 s apart: not one clock, arrival stays the rule.
    const apart = new SenderReportAligner();
    apart.noteFirstPacket(0, 1, 0, T0, RATE);
    apart.noteFirstPacket(1, 2, 0, T0, RATE);
    apart.noteSenderReport(0, { ssrc: 1, ntpMs: T0, rtpTimestamp: 0 });
    apart.noteSenderReport(1, { ssrc: 2, ntpMs: T0 - 2000, rtpTimestamp: 0 });
    expect(apart.shifts().size).toBe(0);
  });

  it('handles RTP timestamps that wrap between the first packet and the report', () => {
    const a = new SenderReportAligner();
    a.noteFirstPacket(0, 1, 0xffff_ff00, T0, RATE);
    a.noteFirstPacket(1, 2, 500, T0 + 50, RATE);
    // 0x100 ticks after the first packet of leg 0 is timestamp 0 after the wrap.
    a.noteSenderReport(0, { ssrc: 1, ntpMs: T0 + 32, rtpTimestamp: 0 });
    a.noteSenderReport(1, { ssrc: 2, ntpMs: T0, rtpTimestamp: 500 });
    expect([...a.shifts().entries()]).toEqual([[1, { ssrc: 2, shiftMs: -50 }]]);
  });
});

describe('LegPlacer with a sender-report alignment', () => {
  it('places both legs\' first packets at the same time when they were sent together', () => {
    const shifts = sameClock(20, 100).shifts();
    const answeredAt = T0;
    const a = new LegPlacer(RATE, answeredAt);
    const b = new LegPlacer(RATE, answeredAt);
    const s = shifts.get(1)!;
    b.alignFirstAnchor(s.ssrc, s.shiftMs);
    const pa = a.place(0xaaaa, 1000, T0 + 120);
    const pb = b.place(0xbbbb, 90_000, T0 + 200);
    expect(pa.pos).toBe(960);
    expect(pb.pos).toBe(pa.pos);
    // Later packets follow their timestamps from the moved anchor.
    expect(b.place(0xbbbb, 90_160, T0 + 221).pos).toBe(960 + 160);
    // Without the alignment the late leg would sit 80 ms (640 samples) later.
    expect(new LegPlacer(RATE, answeredAt).place(0xbbbb, 90_000, T0 + 200).pos).toBe(pa.pos + 640);
  });

  it('applies only to the first anchor of that source, and never more than the cap', () => {
    const p = new LegPlacer(RATE, T0);
    p.alignFirstAnchor(7, -100);
    expect(p.place(8, 0, T0 + 500).pos).toBe(4000);
    const q = new LegPlacer(RATE, T0);
    q.alignFirstAnchor(7, -(SR_MAX_SHIFT_MS + 1));
    expect(q.place(7, 0, T0 + 500).pos).toBe(4000);
    const r = new LegPlacer(RATE, T0);
    r.alignFirstAnchor(7, -100);
    expect(r.place(7, 0, T0 + 500).pos).toBe(3200);
    // A new SSRC re-anchors on arrival, unshifted.
    expect(r.place(9, 0, T0 + 1000).pos).toBe(8000);
  });
});
