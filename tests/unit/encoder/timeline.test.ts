import { describe, it, expect } from 'vitest';
import { CallTimeline, DRIFT_MS, LegPlacer } from '../../../src/encoder/timeline.js';

const T0 = 1_800_000_000_000;
const RATE = 8000;

type Placed = { pos: number; anchored: boolean; extTs: number };

/** A leg sending 20 ms packets: ts from `ts0`, arriving at `arrive(i)` ms since answer. */
function send(placer: LegPlacer, n: number, opts: { ssrc?: number; ts0?: number; arrive?: (i: number) => number; order?: number[] } = {}) {
  const ssrc = opts.ssrc ?? 0x1111;
  const ts0 = opts.ts0 ?? 5000;
  const arrive = opts.arrive ?? ((i: number) => 20 + 20 * i);
  const order = opts.order ?? [...Array(n).keys()];
  const res = new Map<number, Placed>();
  // place() returns the placer's own object: copy it.
  for (const i of order) res.set(i, { ...placer.place(ssrc, (ts0 + 160 * i) >>> 0, T0 + arrive(i)) });
  return res;
}

describe('LegPlacer', () => {
  it('anchors on the first arrival and places by timestamp, not by arrival jitter', () => {
    const p = new LegPlacer(RATE, T0);
    const jitter = [0, 7, 3, 15, 1, 9, 0, 12];
    const r = send(p, 8, { arrive: (i) => 40 + 20 * i + jitter[i]! });
    for (let i = 0; i < 8; i++) expect(r.get(i)!.pos).toBe(320 + 160 * i);
    expect(r.get(0)!.anchored).toBe(true);
    expect(p.reanchors).toBe(1);
  });

  it('leaves the gap of lost packets where it was', () => {
    const p = new LegPlacer(RATE, T0);
    const r = send(p, 10, { order: [0, 1, 2, 5, 6, 9] });
    expect(r.get(5)!.pos).toBe(160 + 5 * 160);
    expect(r.get(9)!.pos).toBe(160 + 9 * 160);
  });

  it('puts reordered packets in their place', () => {
    const p = new LegPlacer(RATE, T0);
    const r = send(p, 6, { order: [0, 2, 1, 3, 5, 4] });
    for (let i = 0; i < 6; i++) expect(r.get(i)!.pos).toBe(160 + 160 * i);
    expect(p.reanchors).toBe(1);
  });

  it('keeps a DTX gap (timestamps and arrivals jump together) without re-anchoring', () => {
    const p = new LegPlacer(RATE, T0);
    send(p, 5);
    // 3 s of silence suppression, then the stream resumes on schedule.
    const after = p.place(0x1111, 5000 + 160 * 155, T0 + 20 + 20 * 155 + 4);
    expect(after.anchored).toBe(false);
    expect(after.pos).toBe(160 + 155 * 160);
  });

  it('re-anchors on an SSRC change, at the new source’s arrival', () => {
    const p = new LegPlacer(RATE, T0);
    send(p, 10);
    const r = send(p, 3, { ssrc: 0x2222, ts0: 123456789, arrive: (i) => 5000 + 20 * i });
    expect(r.get(0)!.anchored).toBe(true);
    expect(r.get(0)!.pos).toBe(40000);
    expect(r.get(2)!.pos).toBe(40000 + 320);
    expect(p.reanchors).toBe(2);
  });

  it('re-anchors on a timestamp jump and across 32-bit wrap-around it does not', () => {
    const p = new LegPlacer(RATE, T0);
    send(p, 10, { ts0: 0xffffffff - 800 });
    const wrapped = { ...p.place(0x1111, (0xffffffff - 800 + 160 * 10) >>> 0, T0 + 220) };
    expect(wrapped.anchored).toBe(false);
    expect(wrapped.pos).toBe(160 + 1600);
    // The sender restarts its clock 10 minutes ahead.
    const jumped = { ...p.place(0x1111, (0xffffffff - 800 + 160 * 11 + 8000 * 600) >>> 0, T0 + 240) };
    expect(jumped.anchored).toBe(true);
    expect(jumped.pos).toBe(240 * 8);
    const next = p.place(0x1111, (0xffffffff - 800 + 160 * 12 + 8000 * 600) >>> 0, T0 + 260);
    expect(next.pos).toBe(240 * 8 + 160);
  });

  it('re-anchors when the sender’s clock drifts beyond the threshold, not on one late burst', () => {
    const p = new LegPlacer(RATE, T0);
    // A single 600 ms burst of delay: nothing moves.
    const burst = send(p, 100, { arrive: (i) => 20 + 20 * i + (i >= 50 && i < 60 ? 600 - (i - 50) * 20 : 0) });
    expect([...burst.values()].filter((r) => r.anchored).length).toBe(1);
    expect(burst.get(99)!.pos).toBe(160 + 99 * 160);

    // Timestamps running 2 % slow: arrivals pull ahead of timestamp time by 0.4 ms per packet.
    const q = new LegPlacer(RATE, T0);
    let reanchoredAt = -1;
    for (let i = 0; i < 3000; i++) {
      const r = q.place(0x1, 160 * i, T0 + 20 + i * 20 * 1.02);
      if (i > 0 && r.anchored && reanchoredAt < 0) reanchoredAt = i;
      const expected = Math.round(((20 + i * 20 * 1.02) * RATE) / 1000);
      // Never more than the threshold (plus one window of drift) off the arrival clock.
      expect(Math.abs(r.pos - expected)).toBeLessThanOrEqual(((DRIFT_MS + 40) * RATE) / 1000);
    }
    expect(reanchoredAt).toBeGreaterThan(700);
    expect(reanchoredAt).toBeLessThan(900);
  });

  it('places a telephone-event timestamp without disturbing the anchor', () => {
    const p = new LegPlacer(RATE, T0);
    send(p, 10);
    // Event packets keep the start timestamp while arriving for 2 s.
    for (let k = 0; k < 100; k++) expect(p.place(0x1111, 5000 + 1600, T0 + 220 + 20 * k, false).pos).toBe(160 + 1600);
    expect(p.reanchors).toBe(1);
    // Audio after the event is still placed from the first anchor.
    expect(p.place(0x1111, 5000 + 160 * 110, T0 + 20 + 20 * 110).pos).toBe(160 + 160 * 110);
  });
});

describe('CallTimeline', () => {
  const collect = () => {
    const frames: Int16Array[] = [];
    return { frames, sink: (f: Int16Array) => frames.push(Int16Array.from(f)) };
  };

  it('emits frames only once arrival time passed them by the lag, and exactly totalFrames', () => {
    const tl = new CallTimeline({ sampleRate: RATE, frameSamples: 160, totalFrames: 50, lagMs: 500, ringMs: 1000 });
    tl.addLeg(0, 0);
    const { frames, sink } = collect();
    tl.advance(RATE * 0.5, sink);
    expect(frames.length).toBe(0);
    tl.advance(RATE * 0.6, sink);
    expect(frames.length).toBe(5);
    tl.advance(RATE * 100, sink);
    expect(frames.length).toBe(50);
    tl.finish(sink);
    expect(frames.length).toBe(50);
  });

  it('routes legs by channel, mixes legs on one channel with saturation, and leaves a silent leg silent', () => {
    const tl = new CallTimeline({ sampleRate: RATE, frameSamples: 160, totalFrames: 3 });
    tl.addLeg(0, 0);
    tl.addLeg(1, 1);
    tl.addLeg(2, 1);
    tl.addLeg(3, 0); // sends nothing
    tl.write(0, 0, new Int16Array(160).fill(1000));
    tl.write(1, 160, new Int16Array(160).fill(30000));
    tl.write(2, 160, new Int16Array(160).fill(30000));
    tl.write(2, 320, new Int16Array(160).fill(-700));
    const { frames, sink } = collect();
    tl.finish(sink);
    expect(frames[0]![0]).toBe(1000);
    expect(frames[0]![1]).toBe(0);
    expect(frames[1]![0]).toBe(0);
    expect(frames[1]![1]).toBe(32767);
    expect(frames[2]![1]).toBe(-700);
    expect(frames[2]![0]).toBe(0);
  });

  it('drops what comes too late, and silences the pause intervals', () => {
    const tl = new CallTimeline({ sampleRate: RATE, frameSamples: 160, totalFrames: 10, lagMs: 100, ringMs: 500, silenced: [[400, 700]] });
    tl.addLeg(0, 0);
    const { frames, sink } = collect();
    tl.write(0, 0, new Int16Array(1600).fill(500));
    tl.advance(160 + 800, sink);
    expect(frames.length).toBe(1);
    tl.write(0, 0, new Int16Array(160).fill(9999));
    expect(tl.samplesDropped).toBe(160);
    tl.finish(sink);
    const left = frames.flatMap((f) => [...f].filter((_, i) => i % 2 === 0));
    expect(left.length).toBe(1600);
    expect(left.slice(0, 400).every((v) => v === 500)).toBe(true);
    expect(left.slice(400, 700).every((v) => v === 0)).toBe(true);
    expect(left.slice(700, 1600).every((v) => v === 500)).toBe(true);
  });
});
