/**
 * The floor: the same audio encoded by bare libopus, no daemon, no I/O — one stereo encoder
 * per call (customer left, agent right), the engine's rate, 20 ms frames, the same
 * application, bitrate and complexity as the daemon's config. What it costs per call-second
 * is the least any recorder built on libopus can spend.
 *
 * libopus is reached the way the daemon reaches it (dist/encoder/opus-native.js: our addon,
 * encoding into one reused buffer), so the floor holds the library's cost and nothing else.
 * Before 2026-11-25 it was the @discordjs/opus binding, whose new Buffer per packet made
 * it 3–6 % dearer per frame.
 *
 * Measured on the main thread while nothing else of the bench runs, so process CPU time is
 * the encoder's: right before and right after the engine's phases (run.mjs), so a busy box
 * shows as a floor that moved. `layout: 'mono2'` measures the engine's own layout instead
 * (one mono encoder per leg at half the bitrate).
 */
import { createOpusEncoder, OPUS_MAX_PACKET } from '../dist/encoder/opus-native.js';

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
  const out = Buffer.allocUnsafeSlow(OPUS_MAX_PACKET);
  let bytes = 0;
  const t0 = process.cpuUsage();
  for (let r = 0; r < repeat; r++) {
    // A fresh encoder per pass, as a recorder has one per call.
    const enc = createOpusEncoder({ sampleRate: rate, channels: 2, bitrate, complexity });
    for (let f = 0; f < frames; f++) bytes += enc.encodeInto(buf.subarray(f * frame * 4, (f + 1) * frame * 4), out);
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
  const out = Buffer.allocUnsafeSlow(OPUS_MAX_PACKET);
  let bytes = 0;
  const t0 = process.cpuUsage();
  for (let r = 0; r < repeat; r++) {
    const encs = bufs.map(() => createOpusEncoder({ sampleRate: rate, channels: 1, bitrate: Math.round(bitrate / 2), complexity }));
    for (let f = 0; f < frames; f++) {
      for (let c = 0; c < 2; c++) bytes += encs[c].encodeInto(bufs[c].subarray(f * frame * 2, (f + 1) * frame * 2), out);
    }
  }
  const u = process.cpuUsage(t0);
  const seconds = (frames * repeat * 20) / 1000;
  return { cpuUsPerCallSecond: (u.user + u.system) / seconds, seconds, bytesPerSecond: bytes / seconds };
}
