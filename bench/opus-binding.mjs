/**
 * The two libopus bindings the encoder can run on, side by side: our addon (native/opus-codec)
 * and the @discordjs/opus stand-in. Both are libopus 1.3.1 from the same sources and write the
 * same packets, so what differs is what the binding adds:
 *
 *   load     RSS a thread gains by loading the binding (each encoder thread loads its own)
 *   encoder  RSS per mono encoder, with N of them live, each having encoded a second of audio
 *   frame    CPU per 20 ms mono frame, one encoder encoding the bench's audio
 *
 * Each figure comes from a fresh process (`--child`), the two bindings in turns, `--rounds`
 * times; reported as median [range] and as stand-in ÷ addon.
 *
 *   npm run build && node bench/opus-binding.mjs [--rounds 5] [--encoders 2000] [--seconds 60] [--audio continuous] [--out FILE.json]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { synthConversation } from './audio.mjs';
import { showSpread, spread } from './stats.mjs';

const SELF = fileURLToPath(import.meta.url);
const BINDINGS = ['tallenne', '@discordjs/opus'];
const RATE = 8000;
const FRAME = RATE / 50;

const { values: opt } = parseArgs({
  options: {
    child: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    encoders: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '60' },
    audio: { type: 'string', default: 'continuous' },
    complexity: { type: 'string', default: '5' },
    bitrate: { type: 'string', default: '12000' },
    out: { type: 'string' },
  },
});

function rss() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().rss;
}

async function child(name) {
  const { opusBindingNamed, createOpusEncoder, OPUS_MAX_PACKET } = await import('../dist/encoder/opus-native.js');
  const [voice] = synthConversation(opt.audio, RATE, Number(opt.seconds));
  const settings = { sampleRate: RATE, channels: 1, bitrate: Number(opt.bitrate), complexity: Number(opt.complexity) };
  const out = Buffer.allocUnsafeSlow(OPUS_MAX_PACKET);
  const frames = Math.floor(voice.length / FRAME);
  const frame = (f) => voice.subarray(f * FRAME, (f + 1) * FRAME);

  const before = rss();
  const using = opusBindingNamed(name);
  createOpusEncoder(settings, using).encodeInto(frame(0), out);
  const loaded = rss();

  const encoders = [];
  for (let i = 0; i < Number(opt.encoders); i++) encoders.push(createOpusEncoder(settings, using));
  for (let f = 0; f < 50; f++) for (const e of encoders) e.encodeInto(frame(f % frames), out);
  const held = rss();
  encoders.length = 0;

  const enc = createOpusEncoder(settings, using);
  const t0 = process.cpuUsage();
  for (let f = 0; f < frames; f++) enc.encodeInto(frame(f), out);
  const t = process.cpuUsage(t0);
  return {
    loadMb: (loaded - before) / 1048576,
    encoderKb: (held - loaded) / Number(opt.encoders) / 1024,
    frameUs: (t.user + t.system) / frames,
  };
}

if (opt.child) {
  process.stdout.write(JSON.stringify(await child(opt.child)));
  process.exit(0);
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const summary = (xs) => spread(xs, round);
const show = showSpread;

const runs = { tallenne: [], '@discordjs/opus': [] };
for (let r = 0; r < Number(opt.rounds); r++) {
  for (const name of r % 2 ? [...BINDINGS].reverse() : BINDINGS) {
    const args = ['--expose-gc', SELF, '--child', name, '--encoders', opt.encoders, '--seconds', opt.seconds, '--audio', opt.audio, '--complexity', opt.complexity, '--bitrate', opt.bitrate];
    runs[name].push(JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' })));
  }
}
const figures = {};
for (const name of BINDINGS) {
  figures[name] = Object.fromEntries(['loadMb', 'encoderKb', 'frameUs'].map((k) => [k, summary(runs[name].map((x) => x[k]))]));
}
const ratio = (k) => summary(runs['@discordjs/opus'].map((x, i) => x[k] / runs.tallenne[i][k]));
const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
  options: { rounds: Number(opt.rounds), encoders: Number(opt.encoders), seconds: Number(opt.seconds), audio: opt.audio, rate: RATE, complexity: Number(opt.complexity), bitrate: Number(opt.bitrate) },
  figures,
  standInOverAddon: { loadMb: ratio('loadMb'), encoderKb: ratio('encoderKb'), frameUs: ratio('frameUs') },
  runs,
};
const lines = [
  `libopus bindings: ${result.options.rounds} rounds in turns, ${result.options.encoders} mono encoders at ${RATE} Hz, complexity ${result.options.complexity}, ${result.options.bitrate} bit/s, ${opt.audio} audio (${result.machine})`,
  '',
  '| binding | load (MB RSS per thread) | RSS per encoder (KB) | CPU per 20 ms frame (µs) |',
  '|---|---|---|---|',
  ...BINDINGS.map((n) => `| ${n} | ${show(figures[n].loadMb)} | ${show(figures[n].encoderKb)} | ${show(figures[n].frameUs)} |`),
  `| @discordjs/opus ÷ tallenne, same round | ${show(result.standInOverAddon.loadMb)} | ${show(result.standInOverAddon.encoderKb)} | ${show(result.standInOverAddon.frameUs)} |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
if (opt.out) {
  writeFileSync(opt.out, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(opt.out.replace(/\.json$/, '.md'), `\`\`\`\n${lines.join('\n')}\n\`\`\`\n`);
}
