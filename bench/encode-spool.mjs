/**
 * The encoder's CPU cost, and a same-run comparison with another build: writes one
 * synthetic two-leg PCMU spool (the bench's conversational audio, as long-spool.mjs writes
 * it), then encodes it with this checkout's `dist` and, with
 * `--against DIR`, with DIR's `dist` (another checkout, built), in interleaved rounds
 * (A B B A ...) after one warm-up each, and reports CPU ms per call-second and the ratio.
 *
 *   npm run build && node bench/encode-spool.mjs [--seconds 300] [--rounds 6] [--audio KIND] [--against DIR]
 *
 * Both builds read the same spool, so the spool format must be the same in both. Every file
 * each build writes is checked to hold the same Opus packets and granule positions (the Ogg
 * serial differs from file to file, so the bytes cannot be compared): `sameAudio`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeLongSpool } from './long-spool.mjs';
import { median } from './stats.mjs';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '6' },
    against: { type: 'string' },
    complexity: { type: 'string', default: '5' },
    bitrate: { type: 'string', default: '24000' },
    audio: { type: 'string', default: 'conversational' },
  },
});

const REPO_OF = new Map();
async function encoderOf(dir) {
  const { encodeSpool } = await import(join(dir, 'dist', 'encoder', 'encode-spool.js'));
  REPO_OF.set(encodeSpool, dir);
  return encodeSpool;
}

async function timed(encode, spool, storageDir, id) {
  const t0 = process.cpuUsage();
  // `staging` for builds with the store seam, `storageDir` for the ones before it.
  const r = await encode({ spoolPath: spool, storageDir, staging: { kind: 'local', dir: join(storageDir, 'recordings', '.staging') }, id, complexity: Number(opt.complexity), bitrate: Number(opt.bitrate), skipSilence: true, maskDtmf: false });
  const cpu = process.cpuUsage(t0);
  // Builds since the store seam stage the file (staged.area.dir + key); older ones returned its path.
  const file = r.staged ? (await import(join(REPO_OF.get(encode), 'dist', 'storage', 'staging.js'))).stagedPath(r.staged.area, r.staged.key) : join(storageDir, r.result?.file ?? r.file);
  const audio = oggAudioHash(readFileSync(file));
  rmSync(file);
  return { cpuMs: (cpu.user + cpu.system) / 1000, result: r, audio };
}

/** Hash of an Ogg file's packet data and granule positions (not serials, sequence or CRCs). */
function oggAudioHash(buf) {
  const h = createHash('sha256');
  let o = 0;
  while (o + 27 <= buf.length && buf.toString('latin1', o, o + 4) === 'OggS') {
    const segs = buf[o + 26];
    let data = 0;
    for (let i = 0; i < segs; i++) data += buf[o + 27 + i];
    h.update(buf.subarray(o + 5, o + 14)); // flags and granule position
    h.update(buf.subarray(o + 27, o + 27 + segs + data)); // lacing and packet data
    o += 27 + segs + data;
  }
  return h.digest('hex');
}


const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-encode-'));
try {
  const seconds = Number(opt.seconds);
  const spool = join(dir, 'call.spool');
  await writeLongSpool(REPO, spool, seconds / 3600, opt.audio);
  const builds = [{ name: 'this', encode: await encoderOf(REPO) }];
  if (opt.against) builds.push({ name: 'against', encode: await encoderOf(resolve(opt.against)) });
  let id = 0;
  const ulid = () => `01JBENCH${String(++id).padStart(18, '0')}`;
  const outs = builds.map(() => []);
  const legs = [];
  const audio = new Set();
  for (const b of builds) {
    const w = await timed(b.encode, spool, dir, ulid()); // warm-up
    legs.push(JSON.stringify(w.result.legs));
    audio.add(w.audio);
  }
  const rounds = Number(opt.rounds);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? builds.map((_, i) => i) : builds.map((_, i) => builds.length - 1 - i);
    for (const i of order) {
      const t = await timed(builds[i].encode, spool, dir, ulid());
      outs[i].push(t.cpuMs);
      audio.add(t.audio);
    }
  }
  const perCallSecond = (ms) => Math.round((ms / seconds) * 1000) / 1000;
  const report = { seconds, audio: opt.audio, rounds, sameAudio: audio.size === 1, loadAverage: readFileSync('/proc/loadavg', 'latin1').split(' ').slice(0, 3).map(Number), builds: builds.map((b, i) => ({ build: b.name, cpuMsPerCallSecond: outs[i].map(perCallSecond), median: perCallSecond(median(outs[i])) })) };
  if (builds.length === 2) {
    report.ratios = outs[0].map((ms, k) => Math.round((ms / outs[1][k]) * 1000) / 1000);
    report.medianRatio = median(report.ratios);
    report.sameLegFigures = legs[0] === legs[1];
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
