import { describe, it, expect } from 'vitest';
import { Worker } from 'node:worker_threads';
import {
  createOpusDecoder,
  createOpusEncoder,
  opusBinding,
  opusBindingNamed,
  OPUS_MAX_PACKET,
  OPUS_PRE_SKIP_48K,
  type OpusRate,
} from '../../../src/encoder/opus-native.js';

/** Speech-like test signal: two tones and some noise from a fixed seed, `frames` 20 ms frames. */
function signal(rate: number, channels: 1 | 2, frames: number, seed = 7): Int16Array[] {
  let s = seed;
  const noise = (): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return (s / 0x7fffffff - 0.5) * 600;
  };
  const n = rate / 50;
  const out: Int16Array[] = [];
  for (let f = 0; f < frames; f++) {
    const pcm = new Int16Array(n * channels);
    for (let i = 0; i < n; i++) {
      const t = (f * n + i) / rate;
      for (let c = 0; c < channels; c++) {
        // A pause every half second, so the encoder also meets silence.
        const on = Math.floor(t * 2 + c) % 3 !== 2;
        pcm[i * channels + c] = on ? Math.round(7000 * Math.sin(2 * Math.PI * (300 + 400 * c) * t) + 2000 * Math.sin(2 * Math.PI * 1800 * t) + noise()) : 0;
      }
    }
    out.push(pcm);
  }
  return out;
}

describe('libopus binding', () => {
  it('is the addon npm ci builds, not the stand-in', () => {
    expect(opusBinding()).toEqual({ name: 'tallenne', fallbackReason: null });
  });

  it('writes packets bit for bit the same as the @discordjs/opus stand-in, and decodes them the same', () => {
    const bindings = [opusBindingNamed('tallenne'), opusBindingNamed('@discordjs/opus')];
    for (const [rate, channels, bitrate] of [
      [8000, 1, 12000],
      [16000, 1, 16000],
      [48000, 1, 32000],
      [8000, 2, 24000],
    ] as Array<[OpusRate, 1 | 2, number]>) {
      const frames = signal(rate, channels, 150);
      const packets = bindings.map((using) => {
        const enc = createOpusEncoder({ sampleRate: rate, channels, bitrate, complexity: 5 }, using);
        const out = new Uint8Array(OPUS_MAX_PACKET);
        return frames.map((pcm) => Buffer.from(out.subarray(0, enc.encodeInto(pcm, out))));
      });
      expect(packets[0]!.length).toBe(150);
      packets[0]!.forEach((p, i) => expect(p.equals(packets[1]![i]!), `${rate} Hz ×${channels}, frame ${i}`).toBe(true));
      const pcm = bindings.map((using) => {
        const dec = createOpusDecoder(rate, channels, using);
        const out = new Int16Array((rate * 120) / 1000 * channels);
        return packets[0]!.map((p) => Array.from(out.subarray(0, dec.decode(p, out) * channels)));
      });
      expect(pcm[0]!.every((f) => f.length === (rate / 50) * channels)).toBe(true);
      expect(pcm[0]).toEqual(pcm[1]);
    }
  });

  it('gives the look-ahead the Ogg pre-skip assumes, at every rate the engine encodes at', () => {
    for (const rate of [8000, 12000, 16000, 24000, 48000] as OpusRate[]) {
      const enc = createOpusEncoder({ sampleRate: rate, channels: 1, bitrate: 16000, complexity: 5 });
      expect(enc.lookahead()! * (48000 / rate)).toBe(OPUS_PRE_SKIP_48K);
    }
  });

  it('encodes into the buffer it is given, never past its end, and returns the length; encode() is a copy of the same', () => {
    const [frame] = signal(8000, 1, 1);
    const a = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    const b = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    // libopus may use all of the room it is given while it writes (its range coder fills the
    // buffer from both ends), but never a byte outside it.
    const out = Buffer.alloc(OPUS_MAX_PACKET + 8, 0xee);
    const n = a.encodeInto(frame!, out.subarray(4, 4 + OPUS_MAX_PACKET));
    expect(n).toBeGreaterThan(1);
    expect(out.subarray(0, 4).every((x) => x === 0xee)).toBe(true);
    expect(out.subarray(4 + OPUS_MAX_PACKET).every((x) => x === 0xee)).toBe(true);
    expect(b.encode(frame!).equals(out.subarray(4, 4 + n))).toBe(true);
  });

  it('fits a packet into a small buffer by spending fewer bytes, as libopus caps the instant bitrate', () => {
    const enc = createOpusEncoder({ sampleRate: 16000, channels: 1, bitrate: 64000, complexity: 5 });
    const out = new Uint8Array(40);
    for (const pcm of signal(16000, 1, 20)) expect(enc.encodeInto(pcm, out)).toBeLessThanOrEqual(40);
  });

  it('refuses a frame that is not 20 ms, and a handle of the wrong kind, with a clear error', () => {
    const addon = opusBindingNamed('tallenne');
    const enc = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    const out = new Uint8Array(OPUS_MAX_PACKET);
    expect(() => enc.encodeInto(new Int16Array(100), out)).toThrow(/Opus frame must be 320 bytes, got 200/);
    const dec = addon.createDecoder(8000, 1);
    expect(() => addon.encodeInto(dec, new Int16Array(160), out)).toThrow(expect.objectContaining({ code: 'TALLENNE_OPUS', message: 'encode: not an Opus encoder' }));
    expect(() => addon.encodeInto({}, new Int16Array(160), out)).toThrow(TypeError);
    const e = addon.createEncoder(8000, 1, 2048);
    expect(() => addon.decode(e, Buffer.from([0xf8, 0xff, 0xfe]), new Int16Array(960))).toThrow(/not an Opus decoder/);
    // A GET request would make libopus write through the number as a pointer: refused.
    expect(() => addon.encoderSet(e, 4003, 0)).toThrow(RangeError);
    expect(() => addon.encoderSet(e, 4010, 11)).toThrow(/libopus encoder_ctl: invalid argument/);
    expect(() => addon.createEncoder(44100, 1, 2048)).toThrow(/libopus encoder_create: invalid argument/);
    // An odd byte offset cannot hold Int16 samples.
    expect(() => addon.encodeInto(e, Buffer.alloc(321).subarray(1), out)).toThrow(/aligned Int16/);
  });

  it('refuses a corrupt packet, and conceals a lost one', () => {
    const dec = createOpusDecoder(8000, 1);
    const out = new Int16Array(960);
    expect(() => dec.decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]), out)).toThrow(/libopus decode: corrupted stream/);
    const enc = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    for (const pcm of signal(8000, 1, 5)) expect(dec.decode(enc.encode(pcm), out)).toBe(160);
    expect(dec.decode(new Uint8Array(0), out.subarray(0, 160))).toBe(160);
  });

  it('loads and encodes in worker threads, each with encoders of its own, through either binding', async () => {
    const url = new URL('../../../dist/encoder/opus-native.js', import.meta.url).href;
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(url)}).then(({ createOpusEncoder, opusBinding, opusBindingNamed }) => {
        const pcm = new Int16Array(160).map((_, i) => Math.round(5000 * Math.sin(i / 3)));
        const packets = ['tallenne', '@discordjs/opus'].map((name) => {
          const enc = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 }, opusBindingNamed(name));
          return Buffer.concat(Array.from({ length: 50 }, () => enc.encode(pcm)));
        });
        parentPort.postMessage({ binding: opusBinding().name, bytes: packets[0].length, same: packets[0].equals(packets[1]) });
      });`;
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<{ binding: string; bytes: number; same: boolean }>((resolve, reject) => {
            const w = new Worker(code, { eval: true });
            w.once('message', (m) => {
              resolve(m as { binding: string; bytes: number; same: boolean });
              void w.terminate();
            });
            w.once('error', reject);
          }),
      ),
    );
    expect(results[0]!.binding).toBe('tallenne');
    expect(results[0]!.bytes).toBeGreaterThan(50);
    expect(results[0]!.same).toBe(true);
    expect(results[1]).toEqual(results[0]);
  });
});
