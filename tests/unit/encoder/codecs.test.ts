import { describe, it, expect } from 'vitest';
import { StreamResampler, chooseOutputRate, createPayloadDecoder, decodedRate } from '../../../src/encoder/codecs.js';
import { createOpusEncoder } from '../../../src/encoder/opus-native.js';
import { peak, toneLevel } from '../../support/spool-fixture.js';
import type { MediaFormat } from '../../../src/types.js';

const fmt = (codec: MediaFormat['codec'], clockRate: number, channels = 1, pt = 96): MediaFormat => ({ pt, codec, clockRate, channels });

function tone(hz: number, rate: number, n: number, amp = 10000, from = 0): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * (from + i)) / rate)));
}

describe('output rate', () => {
  it('is 8 kHz for narrowband legs and 16 kHz as soon as one leg is wideband', () => {
    expect(chooseOutputRate([fmt('PCMU', 8000), fmt('PCMA', 8000), fmt('TELEPHONE-EVENT', 48000)])).toBe(8000);
    expect(chooseOutputRate([fmt('PCMU', 8000), fmt('G722', 8000)])).toBe(16000);
    expect(chooseOutputRate([fmt('L16', 8000)])).toBe(8000);
    expect(chooseOutputRate([fmt('L16', 44100)])).toBe(16000);
    expect(chooseOutputRate([fmt('OPUS', 48000, 2)])).toBe(16000);
    expect(decodedRate(fmt('G722', 8000), 16000)).toBe(16000);
    expect(decodedRate(fmt('OPUS', 48000), 8000)).toBe(8000);
  });
});

describe('payload decoders', () => {
  it('decodes big-endian L16 and averages channels', () => {
    const d = createPayloadDecoder(fmt('L16', 16000, 2), 16000);
    const p = Buffer.alloc(8);
    p.writeInt16BE(1000, 0);
    p.writeInt16BE(3000, 2);
    p.writeInt16BE(-200, 4);
    p.writeInt16BE(-400, 6);
    expect([...d.decode(p)]).toEqual([2000, -300]);
  });

  it('decodes Opus at the output rate', () => {
    const enc = createOpusEncoder({ sampleRate: 48000, channels: 1, bitrate: 32000, complexity: 5 });
    const d = createPayloadDecoder(fmt('OPUS', 48000, 2), 16000);
    const out: number[] = [];
    for (let f = 0; f < 20; f++) out.push(...d.decode(enc.encode(Buffer.from(tone(500, 48000, 960, 10000, f * 960).buffer))));
    expect(out.length).toBe(20 * 320);
    expect(toneLevel(out, 500, 16000, 1600, out.length)).toBeGreaterThan(8000);
    expect(d.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])).length).toBe(0);
  });

  it('refuses to build a decoder for comfort noise or events', () => {
    expect(() => createPayloadDecoder(fmt('CN', 8000), 8000)).toThrow(RangeError);
    expect(() => createPayloadDecoder(fmt('TELEPHONE-EVENT', 8000), 8000)).toThrow(RangeError);
  });
});

describe('StreamResampler', () => {
  it('upsamples 8 → 16 kHz in packets with the tone, level and timing intact', () => {
    const r = new StreamResampler(8000, 16000);
    const input = tone(1000, 8000, 8000);
    const out: number[] = [];
    for (let o = 0; o < input.length; o += 160) out.push(...r.process(input.subarray(o, o + 160)));
    out.push(...r.flush());
    expect(out.length).toBe(16000);
    expect(toneLevel(out, 1000, 16000, 800, 15200)).toBeGreaterThan(9800);
    // No image at 16 - 1 = 15 kHz folded to 7 kHz.
    expect(toneLevel(out, 7000, 16000, 800, 15200)).toBeLessThan(100);
    // Output sample 2k sits on input sample k.
    for (const k of [1000, 2345, 7000]) expect(Math.abs(out[2 * k]! - input[k]!)).toBeLessThan(120);
  });

  it('downsamples 48 kHz and 44.1 kHz to 16 kHz without aliasing', () => {
    for (const inRate of [48000, 44100]) {
      const r = new StreamResampler(inRate, 16000);
      const input = Int16Array.from({ length: inRate }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / inRate) + 8000 * Math.sin((2 * Math.PI * 12000 * i) / inRate)));
      const out: number[] = [];
      for (let o = 0; o < input.length; o += 441) out.push(...r.process(input.subarray(o, o + 441)));
      out.push(...r.flush());
      expect(Math.abs(out.length - 16000)).toBeLessThanOrEqual(1);
      expect(toneLevel(out, 1000, 16000, 800, 15000)).toBeGreaterThan(7800);
      // 12 kHz would alias to 4 kHz.
      expect(toneLevel(out, 4000, 16000, 800, 15000)).toBeLessThan(150);
    }
  });

  it('starts over after flush()', () => {
    const r = new StreamResampler(8000, 16000);
    r.process(tone(500, 8000, 400));
    expect(r.flush().length).toBeGreaterThan(0);
    expect(r.produced).toBe(0);
    const silent = r.process(new Int16Array(400));
    expect(peak(silent)).toBe(0);
  });
});
