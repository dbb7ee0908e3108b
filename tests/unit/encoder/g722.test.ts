import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { G722Decoder } from '../../../src/encoder/g722.js';
import { g722Tone, peak, toneLevel } from '../../support/spool-fixture.js';

describe('G722Decoder', () => {
  it('decodes an ffmpeg-encoded 1 kHz tone to 16 kHz with its frequency and level', () => {
    const coded = g722Tone(1000, 0.5, 1000);
    expect(coded.length).toBe(8000);
    const out = new Int16Array(coded.length * 2);
    expect(new G722Decoder().decode(coded, out)).toBe(16000);
    const level = toneLevel(out, 1000, 16000, 1600, 16000);
    // The tone goes in at half scale; ADPCM keeps it within a dB or so.
    expect(level).toBeGreaterThan(0.5 * 32767 * 0.85);
    expect(level).toBeLessThan(0.5 * 32767 * 1.15);
    expect(toneLevel(out, 3000, 16000, 1600, 16000)).toBeLessThan(level / 50);
  });

  it('keeps content above 4 kHz (the higher sub-band), which G.711 cannot carry', () => {
    const coded = g722Tone(6000, 0.4, 500);
    const out = new Int16Array(coded.length * 2);
    new G722Decoder().decode(coded, out);
    expect(toneLevel(out, 6000, 16000, 1600, 8000)).toBeGreaterThan(0.4 * 32767 * 0.7);
  });

  it('matches ffmpeg’s decoder sample for sample', () => {
    const coded = g722Tone(440, 0.6, 400);
    const ref = execFileSync('ffmpeg', ['-v', 'error', '-f', 'g722', '-i', '-', '-f', 's16le', '-'], { input: coded });
    const expected = new Int16Array(ref.buffer, ref.byteOffset, ref.length >> 1);
    const out = new Int16Array(coded.length * 2);
    new G722Decoder().decode(coded, out);
    expect(out).toEqual(expected);
  });

  it('is stateful across packets and restarts cleanly after reset()', () => {
    const coded = g722Tone(440, 0.6, 200);
    const whole = new Int16Array(coded.length * 2);
    new G722Decoder().decode(coded, whole);
    const dec = new G722Decoder();
    const parts = new Int16Array(coded.length * 2);
    for (let o = 0; o < coded.length; o += 160) dec.decode(coded.subarray(o, o + 160), parts, o * 2);
    expect(parts).toEqual(whole);
    dec.reset();
    const again = new Int16Array(coded.length * 2);
    dec.decode(coded, again);
    expect(again).toEqual(whole);
    expect(peak(whole)).toBeGreaterThan(10000);
  });
});
