/**
 * Whether libopus costs more when many encoders take turns, as in the daemon, than when one
 * encoder runs alone, as in the floor. Each live call's two mono encoders hold about 88 KB of
 * libopus state, and an encoder thread steps each call in turn (`TICK_MS`, 250 ms, so about
 * 12 frames a turn), so the state may have left the cache by the call's next turn.
 *
 * Each round, in a fresh process per layout, in turns: `--encoders` mono encoders each encode
 * `--frames` 20 ms frames of the bench's audio (each from its own offset), `--turn` frames per
 * encoder per turn; and, as the floor does it, one encoder encoding the same number of frames
 * alone. CPU per frame (process.cpuUsage), median [range] over `--rounds`, and each layout
 * over the one encoder alone in the same round.
 *
 *   npm run build && node bench/opus-locality.mjs [--encoders 200] [--turns 1,12,50] [--frames 500] [--rounds 5] [--audio continuous] [--out FILE.json]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { synthConversation } from './audio.mjs';
import { showSpread, spread } from './stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const RATE = 8000;
const FRAME = RATE / 50;

const { values: opt } = parseArgs({
  options: {
    child: { type: 'string' },
    encoders: { type: 'string', default: '200' },
    turns: { type: 'string', default: '1,12,50' },
    frames: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '5' },
    audio: { type: 'string', default: 'continuous' },
    complexity: { type: 'string', default: '5' },
    bitrate: { type: 'string', default: '12000' },
    out: { type: 'string' },
  },
});

/** One layout: `n` encoders, `turn` frames each per turn; CPU µs per frame. */
async function child(layout) {
  const { createOpusEncoder, OPUS_MAX_PACKET } = await import('../dist/encoder/opus-native.js');
  const [n, turn] = layout.split('x').map(Number);
  const frames = Number(opt.frames);
  const [voice] = synthConversation(opt.audio, RATE, 60);
  const have = Math.floor(voice.length / FRAME);
  const settings = { sampleRate: RATE, channels: 1, bitrate: Number(opt.bitrate), complexity: Number(opt.complexity) };
  const out = Buffer.allocUnsafeSlow(OPUS_MAX_PACKET);
  const encoders = Array.from({ length: n }, () => createOpusEncoder(settings));
  // Each encoder starts at its own place in the audio, as calls do.
  const frame = (e, f) => {
    const at = ((f + e * 37) % have) * FRAME;
    return voice.subarray(at, at + FRAME);
  };
  const t0 = process.cpuUsage();
  for (let start = 0; start < frames; start += turn) {
    for (let e = 0; e < n; e++) {
      for (let f = start; f < start + turn && f < frames; f++) encoders[e].encodeInto(frame(e, f), out);
    }
  }
  const t = process.cpuUsage(t0);
  return { frameUs: (t.user + t.system) / (n * frames) };
}

if (opt.child) {
  process.stdout.write(JSON.stringify(await child(opt.child)));
  process.exit(0);
}

const n = Number(opt.encoders);
const alone = `1x${n * Number(opt.frames)}`;
const layouts = [...opt.turns.split(',').map((t) => `${n}x${Number(t)}`), alone];
const runs = Object.fromEntries(layouts.map((l) => [l, []]));
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const rounds = Number(opt.rounds);
for (let r = 0; r < rounds; r++) {
  // The alone layout encodes as many frames as all the encoders together, so each round's
  // layouts do the same work; the order turns each round.
  const order = r % 2 ? [...layouts].reverse() : layouts;
  for (const l of order) {
    const args = [SELF, '--child', l, '--frames', l === alone ? String(n * Number(opt.frames)) : opt.frames, '--audio', opt.audio, '--complexity', opt.complexity, '--bitrate', opt.bitrate];
    runs[l].push(JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })).frameUs);
  }
}

const label = (l) => (l === alone ? 'one encoder alone (the floor)' : `${n} encoders, ${l.split('x')[1]} frame(s) a turn`);
const rows = layouts.map((l) => ({
  layout: label(l),
  frameUs: spread(runs[l], round),
  overAlone: spread(runs[l].map((x, i) => x / runs[alone][i]), (x) => round(x, 3)),
}));
const lines = [
  `libopus in turns: ${rounds} rounds, mono encoders at ${RATE} Hz, complexity ${opt.complexity}, ${opt.bitrate} bit/s, ${opt.audio} audio (${cpus().length} × ${cpus()[0]?.model.trim()})`,
  '',
  '| layout | CPU per 20 ms frame (µs) | ÷ one encoder alone, same round |',
  '|---|---|---|',
  ...rows.map((r) => `| ${r.layout} | ${showSpread(r.frameUs)} | ${showSpread(r.overAlone)} |`),
];
console.log(lines.join('\n'));
if (opt.out) {
  writeFileSync(opt.out, JSON.stringify({ date: new Date().toISOString(), options: opt, rows, runs }, null, 2));
  writeFileSync(opt.out.replace(/\.json$/, '.md'), lines.join('\n') + '\n');
}
