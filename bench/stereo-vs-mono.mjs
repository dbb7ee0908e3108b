#!/usr/bin/env node
/**
 * The evidence behind the encoder's layout: libopus CPU per call-second for the bench's audio
 * (60 s, 8 kHz, 20 ms frames, VOIP) encoded as one forced-stereo stream at the call's bitrate,
 * as two mono streams at half of it each, and as two mono streams whose silent-leg frames are
 * skipped with the daemon's rule (RMS < 64 for more than 10 frames). No daemon involved.
 *
 *   node bench/stereo-vs-mono.mjs [--out FILE.json]
 */
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { synthConversation } from './audio.mjs';

const require = createRequire(import.meta.url);
const { OpusEncoder } = require('@discordjs/opus');

function encoder(channels, bitrate, complexity) {
  const e = new OpusEncoder(8000, channels);
  e.applyEncoderCTL(4000, 2048); // OPUS_SET_APPLICATION: VOIP
  e.applyEncoderCTL(4024, 3001); // OPUS_SET_SIGNAL: voice
  if (channels === 2) e.applyEncoderCTL(4022, 2); // OPUS_SET_FORCE_CHANNELS
  e.applyEncoderCTL(4010, complexity);
  e.setBitrate(bitrate);
  return e;
}

function cpuUs(fn) {
  const t = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t);
  return u.user + u.system;
}

const SECONDS = 60;
const out = { seconds: SECONDS, bitratePerCall: 24000, results: [] };
for (const kind of ['continuous', 'conversational']) {
  const [a, b] = synthConversation(kind, 8000, SECONDS);
  const frames = Math.floor(a.length / 160);
  const stereo = new Int16Array(frames * 320);
  for (let i = 0; i < frames * 160; i++) {
    stereo[2 * i] = a[i];
    stereo[2 * i + 1] = b[i];
  }
  for (const complexity of [0, 5, 10]) {
    const st = encoder(2, 24000, complexity);
    const stereoUs = cpuUs(() => {
      for (let f = 0; f < frames; f++) st.encode(Buffer.from(stereo.buffer, f * 640, 640));
    });
    const m = [encoder(1, 12000, complexity), encoder(1, 12000, complexity)];
    const monoUs = cpuUs(() => {
      [a, b].forEach((p, leg) => {
        for (let f = 0; f < frames; f++) m[leg].encode(Buffer.from(p.buffer, f * 320, 320));
      });
    });
    const g = [encoder(1, 12000, complexity), encoder(1, 12000, complexity)];
    let encoded = 0;
    const gatedUs = cpuUs(() => {
      [a, b].forEach((p, leg) => {
        let run = 0;
        for (let f = 0; f < frames; f++) {
          let e = 0;
          for (let i = f * 160; i < f * 160 + 160; i++) e += p[i] * p[i];
          run = e < 64 * 64 * 160 ? run + 1 : 0;
          if (run > 10) continue;
          g[leg].encode(Buffer.from(p.buffer, f * 320, 320));
          encoded++;
        }
      });
    });
    out.results.push({
      audio: kind, complexity,
      stereoUsPerCallSecond: Math.round(stereoUs / SECONDS),
      twoMonoUsPerCallSecond: Math.round(monoUs / SECONDS),
      twoMonoGatedUsPerCallSecond: Math.round(gatedUs / SECONDS),
      legFramesEncodedPct: Math.round((1000 * encoded) / (2 * frames)) / 10,
    });
  }
}
console.table(out.results);
const i = process.argv.indexOf('--out');
if (i > 0) writeFileSync(process.argv[i + 1], JSON.stringify(out, null, 2) + '\n');
