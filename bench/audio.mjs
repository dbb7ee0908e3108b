/**
 * The bench's audio: a synthetic two-party conversation, made once per run and encoded once
 * into per-frame RTP payloads, so the load generator only copies bytes at send time.
 *
 * Voice: a glottal-like harmonic series with a wandering pitch (intonation), shaped by three
 * formants that move per syllable (vowel changes), syllables at about 4–5 per second with
 * short fricative noise bursts, phrases separated by pauses. It is not speech, but the
 * encoder sees what it sees in speech: voiced harmonics, energy that rises and falls every
 * 200 ms, unvoiced noise, and pauses — never a constant tone.
 *
 * Conversation (the default): the parties take turns (2–7 s each, a 0.2–1 s gap, now and
 * then a short overlap or back-channel "mm"), so each leg is silent roughly half the time.
 * During silence a leg still sends packets carrying faint line noise (about -62 dBFS), as a
 * telephone without DTX does. Continuous: both parties talk all the time (the libopus floor's
 * case). Tone: a steady tone on each leg, no quiet frame at all.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const FRAME_MS = 20;

/** Deterministic PRNG (mulberry32) so every run sends the same audio. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VOWELS = [
  [730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410], [440, 1020, 2240], [660, 1720, 2410],
];

/**
 * Synthesises `seconds` of one voice at `rate` Hz. `talking(t)` says whether the party
 * speaks at time t (seconds); outside speech the signal is faint noise.
 */
function synthVoice(rate, seconds, seed, baseF0, talking) {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  const rnd = prng(seed);
  let phase = 0;
  let syllableEnd = 0;
  let syllableStart = 0;
  let formants = VOWELS[0];
  let fricative = false;
  let lp = 0;
  const nyquist = rate / 2 - 200;
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const noise = (rnd() + rnd() + rnd() - 1.5) * 50; // about -62 dBFS of line noise
    if (!talking(t)) {
      out[i] = Math.round(noise);
      continue;
    }
    if (t >= syllableEnd) {
      syllableStart = t;
      syllableEnd = t + 0.12 + rnd() * 0.16;
      formants = VOWELS[Math.floor(rnd() * VOWELS.length)];
      fricative = rnd() < 0.25;
    }
    const f0 = baseF0 * (1 + 0.12 * Math.sin(2 * Math.PI * 0.6 * t + seed) + 0.05 * Math.sin(2 * Math.PI * 2.3 * t));
    phase += (2 * Math.PI * f0) / rate;
    if (phase > 2 * Math.PI * 1000) phase -= 2 * Math.PI * 1000;
    const u = (t - syllableStart) / (syllableEnd - syllableStart);
    const env = Math.sin(Math.PI * Math.min(1, Math.max(0, u))) ** 0.7;
    let s = 0;
    for (let h = 1; h * f0 < nyquist; h++) {
      const f = h * f0;
      let w = 0;
      for (let k = 0; k < 3; k++) {
        const d = (f - formants[k]) / (60 + 40 * k);
        w += Math.exp(-0.5 * d * d) / (k + 1);
      }
      s += (w / Math.sqrt(h)) * Math.sin(h * phase);
    }
    let sample = 5200 * s * env;
    if (fricative && u < 0.35) {
      // A short unvoiced burst: high-passed noise at the syllable's start.
      const white = rnd() * 2 - 1;
      lp += 0.3 * (white - lp);
      sample = sample * 0.3 + 2500 * (white - lp) * Math.sin(Math.PI * (u / 0.35));
    }
    out[i] = Math.max(-32767, Math.min(32767, Math.round(sample + noise)));
  }
  return out;
}

/** Talk/listen turns for two parties over `seconds`: arrays of [from, to] seconds. */
export function conversationTurns(seconds, seed) {
  const rnd = prng(seed);
  const turns = [[], []];
  let t = 0.4;
  let who = 0;
  while (t < seconds - 1) {
    const len = 2 + rnd() * 5;
    const end = Math.min(seconds - 0.6, t + len);
    // Phrases within a turn, separated by short breathing pauses.
    let p = t;
    while (p < end) {
      const phrase = Math.min(end - p, 0.8 + rnd() * 1.6);
      turns[who].push([p, p + phrase]);
      p += phrase + 0.15 + rnd() * 0.35;
    }
    // Now and then the listener says "mm" near the end of the other's turn.
    if (rnd() < 0.3 && end - t > 3) turns[1 - who].push([end - 1.2, end - 0.9]);
    t = end + 0.2 + rnd() * 0.8;
    who = 1 - who;
  }
  for (const list of turns) list.sort((a, b) => a[0] - b[0]);
  return turns;
}

function inTurns(list) {
  let i = 0;
  return (t) => {
    while (i < list.length && list[i][1] <= t) i++;
    return i < list.length && list[i][0] <= t;
  };
}

/**
 * Tone: a steady tone on each leg (425 Hz on the customer's, 1020 Hz with its third harmonic
 * on the agent's, about -12 dBFS), never a quiet frame: the silence gate never closes, so it
 * is the worst case for the gate and libopus runs on every frame of both legs.
 */
function synthTone(rate, seconds, partials) {
  const n = Math.round(rate * seconds);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const [f, a] of partials) s += a * Math.sin((2 * Math.PI * f * i) / rate);
    out[i] = Math.round(s);
  }
  return out;
}

/** PCM of both parties, `rate` Hz, `seconds` long. kind: 'conversational' | 'continuous' | 'tone'. */
export function synthConversation(kind, rate, seconds, seed = 7) {
  if (kind === 'tone') return [synthTone(rate, seconds, [[425, 8000]]), synthTone(rate, seconds, [[1020, 6000], [3060, 2000]])];
  if (kind === 'continuous') {
    return [synthVoice(rate, seconds, seed + 1, 120, () => true), synthVoice(rate, seconds, seed + 2, 190, () => true)];
  }
  const turns = conversationTurns(seconds, seed);
  return [synthVoice(rate, seconds, seed + 1, 120, inTurns(turns[0])), synthVoice(rate, seconds, seed + 2, 190, inTurns(turns[1]))];
}

/** Fraction of 20 ms frames of a party that are speech (for the report). */
export function talkFraction(kind, seconds, seed = 7) {
  if (kind === 'continuous' || kind === 'tone') return [1, 1];
  const turns = conversationTurns(seconds, seed);
  return turns.map((list) => list.reduce((s, [a, b]) => s + (b - a), 0) / seconds);
}

// ---- G.711 -----------------------------------------------------------------------------

function linearToUlaw(sample) {
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function linearToAlaw(sample) {
  let s = Math.max(-32767, Math.min(32767, sample));
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = exponent === 0 ? (s >> 4) & 0x0f : (s >> (exponent + 3)) & 0x0f;
  return (sign | (exponent << 4) | mantissa) ^ 0x55;
}

/**
 * Codec parameters as the SDP offer and the RTP sender need them.
 * rate: the PCM rate synthesised for the codec; tsStep: RTP timestamp units per 20 ms.
 */
export const CODECS = {
  pcmu: { pt: 0, rtpmap: 'PCMU/8000', rate: 8000, tsStep: 160 },
  pcma: { pt: 8, rtpmap: 'PCMA/8000', rate: 8000, tsStep: 160 },
  g722: { pt: 9, rtpmap: 'G722/8000', rate: 16000, tsStep: 160 },
  opus: { pt: 111, rtpmap: 'opus/48000/2', rate: 16000, tsStep: 960 },
};

/**
 * A party's payloads (encodePayloads) as whole RTP packets, one per frame: version 2 and the
 * payload type written, sequence number, timestamp and SSRC left for the sender to fill.
 * { data: Buffer, at: Int32Array(frames + 1) of packet offsets, frames }.
 */
export function rtpPackets(party, pt) {
  const offsets = new Int32Array(party.offsets);
  const payloads = Buffer.from(party.data);
  const data = Buffer.alloc(offsets[party.frames] + 12 * party.frames);
  const at = new Int32Array(party.frames + 1);
  for (let f = 0; f < party.frames; f++) {
    at[f] = offsets[f] + 12 * f;
    data[at[f]] = 0x80;
    data[at[f] + 1] = pt;
    payloads.copy(data, at[f] + 12, offsets[f], offsets[f + 1]);
  }
  at[party.frames] = data.length;
  return { data, at, frames: party.frames };
}

/**
 * Encodes one party's PCM into 20 ms payloads, laid out for sharing with worker threads:
 * { data: SharedArrayBuffer of payload bytes, offsets: SharedArrayBuffer Int32Array(frames+1) }.
 */
export function encodePayloads(codec, pcm) {
  const c = CODECS[codec];
  const frameSamples = (c.rate * FRAME_MS) / 1000;
  const frames = Math.floor(pcm.length / frameSamples);
  let chunks;
  if (codec === 'pcmu' || codec === 'pcma') {
    const enc = codec === 'pcmu' ? linearToUlaw : linearToAlaw;
    const table = new Uint8Array(65536);
    for (let v = -32768; v < 32768; v++) table[v & 0xffff] = enc(v);
    chunks = [];
    for (let f = 0; f < frames; f++) {
      const b = new Uint8Array(frameSamples);
      for (let i = 0; i < frameSamples; i++) b[i] = table[pcm[f * frameSamples + i] & 0xffff];
      chunks.push(b);
    }
  } else if (codec === 'g722') {
    // ffmpeg's G.722 encoder: 16 kHz PCM in, 64 kbit/s out, 160 bytes per 20 ms.
    const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-g722-'));
    try {
      writeFileSync(join(dir, 'in.raw'), Buffer.from(pcm.buffer, pcm.byteOffset, frames * frameSamples * 2));
      execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 's16le', '-ar', '16000', '-ac', '1', '-i', join(dir, 'in.raw'), '-c:a', 'g722', '-f', 'g722', join(dir, 'out.g722')]);
      const all = readFileSync(join(dir, 'out.g722'));
      chunks = [];
      for (let f = 0; f < frames && (f + 1) * 160 <= all.length; f++) chunks.push(all.subarray(f * 160, (f + 1) * 160));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const { OpusEncoder } = require('@discordjs/opus');
    const enc = new OpusEncoder(16000, 1);
    enc.applyEncoderCTL(4000, 2048);
    enc.setBitrate(24000);
    chunks = [];
    for (let f = 0; f < frames; f++) chunks.push(enc.encode(Buffer.from(pcm.buffer, pcm.byteOffset + f * frameSamples * 2, frameSamples * 2)));
  }
  const total = chunks.reduce((s, b) => s + b.length, 0);
  const data = new SharedArrayBuffer(total);
  const offsets = new SharedArrayBuffer(4 * (chunks.length + 1));
  const bytes = new Uint8Array(data);
  const off = new Int32Array(offsets);
  let o = 0;
  chunks.forEach((b, i) => {
    off[i] = o;
    bytes.set(b, o);
    o += b.length;
  });
  off[chunks.length] = o;
  return { data, offsets, frames: chunks.length };
}
