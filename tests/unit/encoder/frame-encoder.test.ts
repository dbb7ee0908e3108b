import { describe, it, expect } from 'vitest';
import { FrameEncoder } from '../../../src/encoder/frame-encoder.js';
import { OggOpusWriter } from '../../../src/encoder/ogg.js';
import { createOpusEncoder } from '../../../src/encoder/opus-native.js';

/** A call's stereo frames at 8 kHz: each leg speaks in turns, with silences between. */
function callFrames(seed: number, frames: number): Int16Array[] {
  const out: Int16Array[] = [];
  for (let f = 0; f < frames; f++) {
    const frame = new Int16Array(320);
    for (let i = 0; i < 160; i++) {
      const t = (f * 160 + i) / 8000;
      // Leg 0 speaks in the first third of each 1.5 s, leg 1 in the second; the rest is silence.
      const phase = Math.floor((t + seed * 0.1) / 0.5) % 3;
      frame[2 * i] = phase === 0 ? Math.round(8000 * Math.sin(2 * Math.PI * (350 + 40 * seed) * t)) : 0;
      frame[2 * i + 1] = phase === 1 ? Math.round(8000 * Math.sin(2 * Math.PI * (900 + 25 * seed) * t)) : 0;
    }
    out.push(frame);
  }
  return out;
}

/** A call's frame encoder writing into `pages`; `end()` finishes the frames and the file. */
function encoderFor(pages: Buffer[]): { enc: FrameEncoder; end(): void } {
  const ogg = new OggOpusWriter({ write: (page: Buffer) => pages.push(Buffer.from(page)) }, { channels: 2, channelMapping: 1, inputSampleRate: 8000, preSkip: 312, serial: 42 });
  const leg = (): ReturnType<typeof createOpusEncoder> => createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
  const enc = new FrameEncoder([leg(), leg()], ogg, true, 160);
  return {
    enc,
    end() {
      enc.finish();
      ogg.finish(400 * 960 - 312);
    },
  };
}

describe('FrameEncoder', () => {
  it('writes the same file for a call whether other calls are encoded between its frames or not', () => {
    // The thread's encoders share where libopus writes; each call's file must not notice.
    const calls = [1, 2, 3].map((seed) => callFrames(seed, 400));
    const alone = calls.map((frames) => {
      const pages: Buffer[] = [];
      const { enc, end } = encoderFor(pages);
      for (const f of frames) enc.push(f);
      end();
      return { bytes: Buffer.concat(pages), encoded: enc.framesEncoded, skipped: enc.framesSkipped };
    });
    const pages: Buffer[][] = calls.map(() => []);
    const encs = pages.map((p) => encoderFor(p));
    for (let f = 0; f < 400; f++) encs.forEach(({ enc }, c) => enc.push(calls[c]![f]!));
    encs.forEach(({ end }) => end());
    encs.forEach(({ enc }, c) => {
      expect(Buffer.concat(pages[c]!).equals(alone[c]!.bytes), `call ${c}`).toBe(true);
      expect([enc.framesEncoded, enc.framesSkipped]).toEqual([alone[c]!.encoded, alone[c]!.skipped]);
    });
    // The silences were skipped, not encoded: the settled packet was reused.
    expect(alone.every((a) => a.skipped > 300)).toBe(true);
  });
});
