/**
 * The encoder's CPU cost, and a same-run comparison with another build: writes one
 * synthetic two-leg PCMU spool (the bench's conversational audio, as long-spool.mjs writes
 * it), then encodes it with this checkout's `dist` and, with
 * `--against DIR`, with DIR's `dist` (another checkout, built), in interleaved rounds
 * (A B B A ...) after one warm-up each, and reports CPU ms per call-second and the ratio.
 *
 *   npm run build && node bench/encode-spool.mjs [--seconds 300] [--rounds 6] [--against DIR]
 *
 * Both builds read the same spool, so the spool format must be the same in both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeLongSpool } from './long-spool.mjs';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '6' },
    against: { type: 'string' },
    complexity: { type: 'string', default: '5' },
    bitrate: { type: 'string', default: '24000' },
  },
});

async function encoderOf(dir) {
  const { encodeSpool } = await import(join(dir, 'dist', 'encoder', 'encode-spool.js'));
  return encodeSpool;
}

async function timed(encode, spool, storageDir, id) {
  const t0 = process.cpuUsage();
  // `staging` for builds with the store seam, `storageDir` for the ones before it.
  const r = await encode({ spoolPath: spool, storageDir, staging: { kind: 'local', dir: join(storageDir, 'recordings', '.staging') }, id, complexity: Number(opt.complexity), bitrate: Number(opt.bitrate), skipSilence: true, maskDtmf: false });
  const cpu = process.cpuUsage(t0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, result: r };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-encode-'));
try {
  const seconds = Number(opt.seconds);
  const spool = join(dir, 'call.spool');
  await writeLongSpool(REPO, spool, seconds / 3600);
  const builds = [{ name: 'this', encode: await encoderOf(REPO) }];
  if (opt.against) builds.push({ name: 'against', encode: await encoderOf(resolve(opt.against)) });
  let id = 0;
  const ulid = () => `01JBENCH${String(++id).padStart(18, '0')}`;
  const outs = builds.map(() => []);
  const legs = [];
  for (const b of builds) legs.push(JSON.stringify((await timed(b.encode, spool, dir, ulid())).result.legs)); // warm-up
  const rounds = Number(opt.rounds);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? builds.map((_, i) => i) : builds.map((_, i) => builds.length - 1 - i);
    for (const i of order) outs[i].push((await timed(builds[i].encode, spool, dir, ulid())).cpuMs);
  }
  const perCallSecond = (ms) => Math.round((ms / seconds) * 1000) / 1000;
  const report = { seconds, rounds, builds: builds.map((b, i) => ({ build: b.name, cpuMsPerCallSecond: outs[i].map(perCallSecond), median: perCallSecond(median(outs[i])) })) };
  if (builds.length === 2) {
    report.ratios = outs[0].map((ms, k) => Math.round((ms / outs[1][k]) * 1000) / 1000);
    report.medianRatio = median(report.ratios);
    report.sameLegFigures = legs[0] === legs[1];
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
