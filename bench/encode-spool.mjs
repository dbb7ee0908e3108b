/**
 * The encoder's CPU cost, and a same-run comparison with another build: writes one
 * synthetic two-leg PCMU spool (the bench's conversational audio, with arrival jitter, a
 * few lost and reordered packets), then encodes it with this checkout's `dist` and, with
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
import { encodePayloads, prng, synthConversation } from './audio.mjs';

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

async function writeSpool(path, seconds) {
  const { SpoolWriter } = await import(join(REPO, 'dist', 'spool', 'writer.js'));
  const { RecordType } = await import(join(REPO, 'dist', 'spool', 'format.js'));
  const pcm = synthConversation('conversational', 8000, 60);
  const parties = pcm.map((p) => encodePayloads('pcmu', p));
  const answeredAt = Date.UTC(2026, 0, 1, 8);
  const w = new SpoolWriter(path);
  const fmt = { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 };
  w.appendMeta(answeredAt, {
    id: 'ENCODEBENCH', callId: 'bench-encode', siprec: true, answeredAt, direction: 'inbound', participants: [],
    legs: [
      { index: 0, label: '1', role: 'customer', channel: 0, formats: [fmt] },
      { index: 1, label: '2', role: 'agent', channel: 1, formats: [fmt] },
    ],
  });
  const rand = prng(11);
  const frames = seconds * 50;
  // Packets in arrival order: each leg's n-th packet arrives 20n ms + 1-9 ms of jitter; one in
  // 500 is lost and one in 700 arrives 50 ms late (reordered).
  const queue = [];
  for (let n = 0; n < frames; n++) {
    for (let leg = 0; leg < 2; leg++) {
      if (rand() < 1 / 500) continue;
      const late = rand() < 1 / 700 ? 50 : 0;
      queue.push({ at: answeredAt + n * 20 + 1 + rand() * 8 + late + leg * 0.3, n, leg });
    }
  }
  queue.sort((a, b) => a.at - b.at);
  const pkt = Buffer.alloc(12 + 160);
  pkt[0] = 0x80;
  let written = 0;
  for (const { at, n, leg } of queue) {
    const t = parties[leg];
    const data = Buffer.from(t.data);
    const offsets = new Int32Array(t.offsets);
    const f = n % t.frames;
    pkt.writeUInt16BE(n & 0xffff, 2);
    pkt.writeUInt32BE((n * 160) >>> 0, 4);
    pkt.writeUInt32BE(0x1000 + leg, 8);
    data.copy(pkt, 12, offsets[f], offsets[f + 1]);
    w.appendPacket(RecordType.Rtp, leg, at, pkt);
    if (++written % 5000 === 0) await w.drain();
  }
  await w.close({ endedAt: answeredAt + frames * 20, reason: 'bye' });
}

async function encoderOf(dir) {
  const { encodeSpool } = await import(join(dir, 'dist', 'encoder', 'encode-spool.js'));
  return encodeSpool;
}

async function timed(encode, spool, storageDir, id) {
  const t0 = process.cpuUsage();
  const r = await encode({ spoolPath: spool, storageDir, id, complexity: Number(opt.complexity), bitrate: Number(opt.bitrate), skipSilence: true, maskDtmf: false });
  const cpu = process.cpuUsage(t0);
  return { cpuMs: (cpu.user + cpu.system) / 1000, result: r };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-encode-'));
try {
  const seconds = Number(opt.seconds);
  const spool = join(dir, 'call.spool');
  await writeSpool(spool, seconds);
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
