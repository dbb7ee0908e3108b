/**
 * The live encoder's spool reading alone: N growing two-leg PCMU spools, 250 ms of records
 * appended to each per pass (as the capture's flushes leave them), and one SpoolFollower per
 * spool reading what its spool gained, in turn, as an encoder thread's pass does (with
 * blocking reads, as the encoder threads read; `--reads async` for the thread pool's reads
 * the main thread uses). Reports the process's CPU (every thread: the reads' thread-pool hops
 * included) per call-second of the reads alone, for this build and, with `--against DIR`,
 * another checkout's build, in alternating rounds (A B B A ...), with the median and range of
 * the rounds' ratios (each round runs both builds back to back, under the same load).
 *
 *   npm run build && node bench/spool-follow.mjs [--calls 100] [--seconds 20] [--rounds 6] [--reads blocking|async] [--against DIR]
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, spread } from './stats.mjs';

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { values: opt } = parseArgs({
  options: {
    calls: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '6' },
    against: { type: 'string' },
    reads: { type: 'string', default: 'blocking' },
  },
});
const calls = Number(opt.calls);
const seconds = Number(opt.seconds);
const PASS_MS = 250;
const PACKET_BYTES = 172;
const RECORD_BYTES = 16 + PACKET_BYTES;

/** 250 ms of a two-leg call's RTP records (20 ms packets), times as the capture writes them. */
function passRecords(pass) {
  // 12.5 packets per leg: 12 and 13 in turn.
  const perLeg = pass % 2 === 0 ? 12 : 13;
  const buf = Buffer.alloc(perLeg * 2 * RECORD_BYTES);
  let o = 0;
  for (let i = 0; i < perLeg; i++) {
    for (let leg = 0; leg < 2; leg++) {
      buf.writeUInt8(1, o);
      buf.writeUInt8(leg, o + 1);
      buf.writeUInt32LE(PACKET_BYTES, o + 4);
      buf.writeDoubleLE(1.7e12 + pass * PASS_MS + i * 20, o + 8);
      buf[o + 16] = 0x80;
      o += RECORD_BYTES;
    }
  }
  return buf;
}

async function run(dir) {
  const { SpoolFollower } = await import(join(dir, 'dist', 'spool', 'follower.js'));
  const tmp = mkdtempSync(join(tmpdir(), 'spool-follow-'));
  try {
    const fds = [];
    const followers = [];
    for (let c = 0; c < calls; c++) {
      const path = join(tmp, `${c}.spool`);
      const fd = openSync(path, 'wx');
      writeSync(fd, Buffer.from('TLNSPL01', 'latin1'));
      fds.push(fd);
      followers.push(new SpoolFollower(path, { blockingReads: opt.reads === 'blocking' }));
    }
    let records = 0;
    const count = () => {
      records++;
    };
    let cpu = 0;
    const passes = (seconds * 1000) / PASS_MS;
    for (let p = 0; p < passes; p++) {
      const data = passRecords(p);
      for (const fd of fds) writeSync(fd, data);
      const t0 = process.cpuUsage();
      for (const f of followers) await f.read(count);
      const d = process.cpuUsage(t0);
      cpu += d.user + d.system;
    }
    for (const f of followers) await f.close();
    for (const fd of fds) closeSync(fd);
    if (records !== (calls * passes * PASS_MS * 2) / 20) throw new Error(`${dir}: ${records} records read`);
    return cpu / (calls * seconds);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const builds = [REPO, ...(opt.against ? [resolve(opt.against)] : [])];
const figures = builds.map(() => []);
for (const b of builds) await run(b); // warm-up
for (let r = 0; r < Number(opt.rounds); r++) {
  const order = r % 2 === 0 ? builds.map((_, i) => i) : builds.map((_, i) => builds.length - 1 - i);
  for (const i of order) figures[i].push(await run(builds[i]));
}
const out = builds.map((b, i) => ({ build: b, usPerCallSecond: Math.round(median(figures[i]) * 10) / 10, runs: figures[i].map((x) => Math.round(x)) }));
const ratios = builds.length > 1 ? figures[0].map((x, r) => x / figures[1][r]) : [];
const r3 = (x) => Math.round(x * 1000) / 1000;
const ratio = ratios.length > 0 ? spread(ratios, r3) : null;
process.stdout.write(`${JSON.stringify({ calls, seconds, reads: opt.reads, builds: out, thisOverAgainst: ratio })}\n`);
