/**
 * What the encoder's thread CPU clock costs a live call (src/encoder/cpu-time.ts). The encoder
 * reads it twice around each step of each live call, and a live call steps once per pass; a
 * pass starts TICK_MS after the last one ended, so that is at most 8 reads per call-second
 * (4.5 to 5.3 counted in a daemon at 100 calls, where passes take time).
 *
 *   clock      this build's clock: the native addon's CLOCK_THREAD_CPUTIME_ID
 *   proc       this build's fallback, /proc/thread-self/stat into a buffer made once
 *   --against  another build's clock (the build before read the stat file with readFileSync)
 *
 * The baseline, measured in the same process: libopus encoding one 20 ms mono frame at the
 * daemon's settings, so the clock's cost per call-second is also given as a share of what
 * libopus costs a call-second of two speaking legs. Each figure comes from a fresh process
 * (`--child`), the clocks in turns, `--rounds` times; reported as median [range].
 *
 *   npm run build && node bench/thread-clock.mjs [--rounds 5] [--reads 20000] [--against DIR] [--out FILE.json]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { synthConversation } from './audio.mjs';
import { showSpread, spread } from './stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const HERE = resolve(SELF, '..', '..');
const RATE = 8000;
const FRAME = RATE / 50;

const { values: opt } = parseArgs({
  options: {
    child: { type: 'string' },
    repo: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    reads: { type: 'string', default: '20000' },
    against: { type: 'string' },
    out: { type: 'string' },
  },
});

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function child(kind, repo) {
  const clockModule = await import(pathToFileURL(resolve(repo, 'dist/encoder/cpu-time.js')).href);
  const read = kind === 'proc' ? clockModule.threadCpuMicrosFromProc : clockModule.threadCpuMicros;
  const { TICK_MS } = await import(pathToFileURL(resolve(repo, 'dist/encoder/encoder-thread.js')).href);
  const { createOpusEncoder, OPUS_MAX_PACKET } = await import(pathToFileURL(resolve(HERE, 'dist/encoder/opus-native.js')).href);
  const reads = Number(opt.reads);
  for (let i = 0; i < 200; i++) read();
  const t0 = cpuMicros();
  for (let i = 0; i < reads; i++) read();
  const readUs = (cpuMicros() - t0) / reads;

  const [voice] = synthConversation('continuous', RATE, 20);
  const enc = createOpusEncoder({ sampleRate: RATE, channels: 1, bitrate: 12000, complexity: 5 });
  const out = Buffer.allocUnsafeSlow(OPUS_MAX_PACKET);
  const frames = Math.floor(voice.length / FRAME);
  const f0 = cpuMicros();
  for (let f = 0; f < frames; f++) enc.encodeInto(voice.subarray(f * FRAME, (f + 1) * FRAME), out);
  const frameUs = (cpuMicros() - f0) / frames;

  const readsPerCallSecond = 2 * (1000 / TICK_MS);
  const libopusPerCallSecond = 2 * 50 * frameUs;
  return { readUs, readsPerCallSecond, clockUsPerCallSecond: readUs * readsPerCallSecond, frameUs, shareOfLibopus: (readUs * readsPerCallSecond) / libopusPerCallSecond };
}

if (opt.child) {
  process.stdout.write(JSON.stringify(await child(opt.child, opt.repo)));
  process.exit(0);
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const summary = (xs) => spread(xs, round);
const show = (s, pct = false) => (pct ? `${round(s.median * 100, 2)} % [${round(s.min * 100, 2)}–${round(s.max * 100, 2)}]` : showSpread(s));

const kinds = [
  { name: 'this build: clock', kind: 'clock', repo: HERE },
  { name: 'this build: proc (fallback)', kind: 'proc', repo: HERE },
  ...(opt.against ? [{ name: `--against ${opt.against}`, kind: 'clock', repo: resolve(opt.against) }] : []),
];
const runs = Object.fromEntries(kinds.map((k) => [k.name, []]));
for (let r = 0; r < Number(opt.rounds); r++) {
  for (const k of r % 2 ? [...kinds].reverse() : kinds) {
    const args = [SELF, '--child', k.kind, '--repo', k.repo, '--reads', opt.reads];
    runs[k.name].push(JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })));
  }
}
const figures = Object.fromEntries(
  kinds.map((k) => [k.name, Object.fromEntries(['readUs', 'readsPerCallSecond', 'clockUsPerCallSecond', 'frameUs', 'shareOfLibopus'].map((f) => [f, summary(runs[k.name].map((x) => x[f]))]))]),
);
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
  options: { rounds: Number(opt.rounds), reads: Number(opt.reads), against: opt.against ?? null },
  figures,
  runs,
};
const lines = [
  `thread CPU clock: ${result.options.rounds} rounds in turns, ${result.options.reads} reads each (${result.machine})`,
  '',
  '| clock | CPU per read (µs) | reads per live call-second (at most: a pass every TICK_MS) | µs per live call-second (at most) | libopus, µs per 20 ms mono frame (same process) | share of libopus per call-second (two legs speaking) |',
  '|---|---|---|---|---|---|',
  ...kinds.map((k) => {
    const f = figures[k.name];
    return `| ${k.name} | ${show(f.readUs)} | ${f.readsPerCallSecond.median} | ${show(f.clockUsPerCallSecond)} | ${show(f.frameUs)} | ${show(f.shareOfLibopus, true)} |`;
  }),
];
process.stdout.write(`${lines.join('\n')}\n`);
if (opt.out) {
  writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(opt.out.replace(/\.json$/, '.md'), `\`\`\`\n${lines.join('\n')}\n\`\`\`\n`);
}
