import { describe, it, expect } from 'vitest';
import { isGated, SILENCE_HANGOVER_FRAMES, SILENCE_RMS, SilenceGate } from '../../../src/encoder/silence-gate.js';

const frame = (level: number) => new Int16Array(160).map((_, i) => (i % 2 === 0 ? level : -level));

describe('SilenceGate', () => {
  it('calls a frame quiet under the RMS threshold, and counts quiet frames in a row', () => {
    const g = new SilenceGate();
    expect(g.observe(frame(0))).toBe(true);
    expect(g.observe(frame(SILENCE_RMS - 1))).toBe(true);
    expect(g.run).toBe(2);
    expect(g.observe(frame(SILENCE_RMS))).toBe(false);
    expect(g.run).toBe(0);
    expect(g.observe(frame(3))).toBe(true);
    expect(g.run).toBe(1);
  });

  it('gates only past the hangover and only when the next frame is quiet too', () => {
    const g = new SilenceGate();
    const gated: boolean[] = [];
    // Speech, 15 quiet frames, speech, 13 quiet frames; each frame judged with the next one as look-ahead.
    const levels = [3000, ...Array(15).fill(0), 3000, ...Array(13).fill(0)];
    let runAtFrame = 0;
    levels.forEach((level, i) => {
      const quiet = g.observe(frame(level));
      if (i > 0) gated.push(isGated(runAtFrame, quiet));
      runAtFrame = g.run;
    });
    gated.push(isGated(runAtFrame, false)); // the last frame: nothing follows, so it is sound
    const on = gated.flatMap((x, i) => (x ? [i] : []));
    // Frames 1..15 are quiet: gated once more than the hangover has passed (frame 11 on),
    // but not frame 15, which the speech at 16 follows.
    expect(on.filter((i) => i < 16)).toEqual([11, 12, 13, 14]);
    expect(on.filter((i) => i > 16)).toEqual([27, 28]);
    expect(isGated(SILENCE_HANGOVER_FRAMES, true)).toBe(false);
    expect(isGated(SILENCE_HANGOVER_FRAMES + 1, true)).toBe(true);
  });
});
