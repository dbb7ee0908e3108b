import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { ALAW_TABLE, ULAW_TABLE, decodeG711 } from '../../../src/encoder/g711.js';

describe('G.711 tables', () => {
  it('expands µ-law to the ITU values', () => {
    expect(ULAW_TABLE[0x00]).toBe(-32124);
    expect(ULAW_TABLE[0x80]).toBe(32124);
    expect(ULAW_TABLE[0xff]).toBe(0);
    expect(ULAW_TABLE[0x7f]).toBe(0);
    expect(ULAW_TABLE[0xfe]).toBe(8);
    expect(ULAW_TABLE[0x7e]).toBe(-8);
    expect(ULAW_TABLE[0xf0]).toBe(120);
    expect(ULAW_TABLE[0xe0]).toBe(372);
  });

  it('expands A-law to the ITU values', () => {
    expect(ALAW_TABLE[0xd5]).toBe(8);
    expect(ALAW_TABLE[0x55]).toBe(-8);
    expect(ALAW_TABLE[0xaa]).toBe(32256);
    expect(ALAW_TABLE[0x2a]).toBe(-32256);
    expect(ALAW_TABLE[0x80]).toBe(5504);
    expect(ALAW_TABLE[0xc5]).toBe(264);
  });

  it('is monotonic within each sign half', () => {
    // µ-law codes 0x80..0xff run from the largest positive value down to zero.
    for (let i = 0x81; i <= 0xff; i++) expect(ULAW_TABLE[i]!).toBeLessThanOrEqual(ULAW_TABLE[i - 1]!);
    const positives = [...ALAW_TABLE].filter((v) => v > 0).sort((a, b) => a - b);
    expect(new Set(positives).size).toBe(128);
  });

  it.each([
    ['PCMU', 'pcm_mulaw', 'mulaw'],
    ['PCMA', 'pcm_alaw', 'alaw'],
  ] as const)('decodes %s exactly as ffmpeg does', (law, codec, fmt) => {
    const coded = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=700:sample_rate=8000:duration=0.5', '-af', 'volume=4', '-c:a', codec, '-f', fmt, '-']);
    const ref = execFileSync('ffmpeg', ['-v', 'error', '-f', fmt, '-ar', '8000', '-ac', '1', '-i', '-', '-f', 's16le', '-'], { input: coded });
    const expected = new Int16Array(ref.buffer, ref.byteOffset, ref.length >> 1);
    const out = new Int16Array(coded.length);
    expect(decodeG711(law, coded, out)).toBe(coded.length);
    expect(out).toEqual(expected);
  });
});
