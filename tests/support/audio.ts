/** Decoding and measuring recorded audio with real tools (ffmpeg, ffprobe, opusinfo). */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { OPUS_INPUT_OPTIONS } from '../../src/storage/opus-decode.js';

export interface Decoded {
  readonly rate: number;
  readonly channels: Int16Array[];
}

/**
 * ffmpeg input options for `file`: an Ogg Opus file is decoded with libopus, as the recorder
 * itself does (src/storage/opus-decode.ts says why); anything else as ffmpeg chooses.
 */
export function inputOptionsFor(file: string): string[] {
  const head = Buffer.alloc(64);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return head.subarray(0, 4).toString('latin1') === 'OggS' && head.includes('OpusHead') ? [...OPUS_INPUT_OPTIONS] : [];
}

/** Decodes any file ffmpeg reads into per-channel PCM at `rate`. */
export function decodeWithFfmpeg(file: string, rate = 8000, channels = 2): Decoded {
  const raw = execFileSync('ffmpeg', ['-v', 'error', ...inputOptionsFor(file), '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', String(rate), '-'], { maxBuffer: 1 << 30 });
  const all = new Int16Array(raw.buffer, raw.byteOffset, raw.length / 2);
  const frames = all.length / channels;
  const out: Int16Array[] = [];
  for (let c = 0; c < channels; c++) {
    const ch = new Int16Array(frames);
    for (let i = 0; i < frames; i++) ch[i] = all[i * channels + c]!;
    out.push(ch);
  }
  return { rate, channels: out };
}

/** Relative power of `hz` in a span of samples (Goertzel), normalised by the span's energy. */
export function tonePower(samples: Int16Array, rate: number, hz: number, from = 0, to = samples.length): number {
  const k = (2 * Math.cos((2 * Math.PI * hz) / rate));
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = from; i < to; i++) {
    const x = samples[i]! / 32768;
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += x * x;
  }
  const n = to - from;
  if (n === 0 || energy === 0) return 0;
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return power / (energy * n / 2);
}

export function rms(samples: Int16Array, from = 0, to = samples.length): number {
  let e = 0;
  for (let i = from; i < to; i++) e += samples[i]! * samples[i]!;
  return to > from ? Math.sqrt(e / (to - from)) : 0;
}

export interface Probe {
  readonly durationSec: number;
  readonly channels: number;
  readonly codec: string;
  readonly sampleRate: number;
}

export function ffprobe(file: string): Probe {
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { encoding: 'utf8' });
  const j = JSON.parse(out) as { streams: Array<{ codec_name: string; channels: number; sample_rate: string; duration?: string }>; format: { duration: string } };
  const s = j.streams[0]!;
  return { durationSec: Number(s.duration ?? j.format.duration), channels: s.channels, codec: s.codec_name, sampleRate: Number(s.sample_rate) };
}

/** Runs opusinfo; returns its exit status and output (non-zero status = invalid stream). */
export function opusinfo(file: string): { status: number; output: string } {
  const r = spawnSync('opusinfo', [file], { encoding: 'utf8' });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}
