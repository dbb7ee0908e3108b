/**
 * The floor: the same audio encoded by bare libopus (@discordjs/opus), no daemon, no I/O —
 * one stereo encoder per call (customer left, agent right), the engine's rate, 20 ms frames,
 * the same application, bitrate and complexity as the daemon's config. What it costs per
 * call-second is the least any recorder built on libopus can spend.
 *
 * Measured on the main thread while nothing else of the bench runs, so process CPU time is
 * the encoder's: right before and right after the engine's phases (run.mjs), so a busy box
 * shows as a floor that moved. `layout: 'mono2'` measures the engine's own layout instead
 * (one mono encoder per leg at half the bitrate).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { OpusEncoder } = require('@discordjs/opus');

const OPUS_SET_APPLICATION = 4000;
const OPUS_SET_COMPLEXITY = 4010;
const OPUS_SET_SIGNAL = 4024;
const OPUS_SET_FORCE_CHANNELS = 4022;
const OPUS_APPLICATION_VOIP = 2048;
const OPUS_SIGNAL_VOICE = 3001;

/**
 * Encodes `[left, right]` PCM (Int16Array at `rate`) as stereo Opus, `repeat` times over.
 * Returns CPU microseconds per call-second and the bytes produced per second.
 */
export function measureFloor({ left, right, rate, complexity, bitrate, repeat = 1, layout = 'stereo' }) {
  if (layout === 'mono2') return measureMonoPair({ left, right, rate, complexity, bitrate, repeat });
  const frame = (rate * 20) / 1000;
  const frames = Math.floor(Math.min(left.length, right.length) / frame);
  const pcm = new Int16Array(frames * frame * 2);
  for (let i = 0; i < frames * frame; i++) {
    pcm[2 * i] = left[i];
    pcm[2 * i + 1] = right[i];
  }
  const buf = Buffer.from(pcm.buffer);
  let bytes = 0;
  const t0 = process.cpuUsage();
  for (let r = 0; r < repeat; r++) {
    // A fresh encoder per pass, as a recorder has one per call.
    const enc = new OpusEncoder(rate, 2);
    enc.applyEncoderCTL(OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP);
    enc.applyEncoderCTL(OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE);
    enc.applyEncoderCTL(OPUS_SET_FORCE_CHANNELS, 2);
    enc.applyEncoderCTL(OPUS_SET_COMPLEXITY, complexity);
    enc.setBitrate(bitrate);
    for (let f = 0; f < frames; f++) bytes += enc.encode(buf.subarray(f * frame * 4, (f + 1) * frame * 4)).length;
  }
  const u = process.cpuUsage(t0);
  const seconds = (frames * repeat * 20) / 1000;
  return { cpuUsPerCallSecond: (u.user + u.system) / seconds, seconds, bytesPerSecond: bytes / seconds };
}

/**
 * The engine's own layout: each leg its own mono encoder at half the bitrate (what the
 * daemon's libopus calls cost when no frame is skipped). Same audio, same settings.
 */
function measureMonoPair({ left, right, rate, complexity, bitrate, repeat }) {
  const frame = (rate * 20) / 1000;
  const frames = Math.floor(Math.min(left.length, right.length) / frame);
  const bufs = [left, right].map((pcm) => Buffer.from(pcm.buffer, pcm.byteOffset, frames * frame * 2));
  let bytes = 0;
  const t0 = process.cpuUsage();
  for (let r = 0; r < repeat; r++) {
    const encs = bufs.map(() => {
      const enc = new OpusEncoder(rate, 1);
      enc.applyEncoderCTL(OPUS_SET_APPLICATION, OPUS_APPLICATION_VOIP);
      enc.applyEncoderCTL(OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE);
      enc.applyEncoderCTL(OPUS_SET_COMPLEXITY, complexity);
      enc.setBitrate(Math.round(bitrate / 2));
      return enc;
    });
    for (let f = 0; f < frames; f++) {
      for (let c = 0; c < 2; c++) bytes += encs[c].encode(bufs[c].subarray(f * frame * 2, (f + 1) * frame * 2)).length;
    }
  }
  const u = process.cpuUsage(t0);
  const seconds = (frames * repeat * 20) / 1000;
  return { cpuUsPerCallSecond: (u.user + u.system) / seconds, seconds, bytesPerSecond: bytes / seconds };
}
