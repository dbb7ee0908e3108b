import { describe, it, expect } from 'vitest';
import { DtmfCollector, MASKED_DTMF_DIGIT } from '../../../src/encoder/dtmf.js';

/** An RFC 4733 payload: event, end bit, volume 10, duration in timestamp units. */
const ev = (code: number, duration: number, end = false) => Buffer.from([code, (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff]);

const RATE = 8000;

describe('DtmfCollector (RFC 4733)', () => {
  it('makes one digit of an event: start position, longest duration, three end packets', () => {
    const d = new DtmfCollector(1, RATE, false);
    for (let k = 1; k <= 5; k++) d.onPacket(ev(9, 160 * k), 0x11, 48000, 4000, 8000);
    for (let k = 0; k < 3; k++) d.onPacket(ev(9, 960, true), 0x11, 48000, 4000, 8000);
    d.finish();
    expect(d.events).toEqual([{ atMs: 500, durationMs: 120, digit: '9', leg: 1 }]);
  });

  it('maps event codes 0-15 to the keys, and ignores other events', () => {
    const d = new DtmfCollector(0, RATE, false);
    [0, 9, 10, 11, 12, 15, 16, 70].forEach((code, i) => d.onPacket(ev(code, 800, true), 1, 1000 * (i + 1), 800 * (i + 1), 8000));
    expect(d.events.map((e) => e.digit)).toEqual(['0', '9', '*', '#', 'A', 'D']);
  });

  it('closes an event whose end packets were lost when the next one starts, and at the end', () => {
    const d = new DtmfCollector(0, RATE, false);
    d.onPacket(ev(1, 400), 1, 1000, 800, 8000);
    d.onPacket(ev(2, 400), 1, 5000, 4800, 8000);
    expect(d.events.map((e) => e.digit)).toEqual(['1']);
    d.finish();
    d.finish();
    expect(d.events.map((e) => [e.digit, e.atMs, e.durationMs])).toEqual([['1', 100, 50], ['2', 600, 50]]);
  });

  it('ignores late packets of an older event, and short payloads', () => {
    const d = new DtmfCollector(0, RATE, false);
    d.onPacket(ev(3, 800, true), 1, 1000, 800, 8000);
    d.onPacket(ev(4, 160), 1, 5000, 4800, 8000);
    d.onPacket(ev(3, 800, true), 1, 1000, 800, 8000);
    d.onPacket(Buffer.from([5, 0x80]), 1, 9000, 8800, 8000);
    d.finish();
    expect(d.events.map((e) => e.digit)).toEqual(['3', '4']);
  });

  it('keeps sources apart, drops events before the answer, masks digits when told', () => {
    const d = new DtmfCollector(2, 16000, true);
    d.onPacket(ev(7, 800, true), 1, 1000, -160, 8000);
    d.onPacket(ev(7, 480, true), 2, 1000, 16000, 48000);
    d.finish();
    expect(d.events).toEqual([{ atMs: 1000, durationMs: 10, digit: MASKED_DTMF_DIGIT, leg: 2 }]);
  });
});
