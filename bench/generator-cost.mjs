#!/usr/bin/env node
/**
 * What the load generator itself costs, without the daemon: the generator (generator.mjs)
 * sends N calls' legs at real-time pace to a sink process (one reading UDP socket per leg, as
 * the daemon has), in each mode in turn, round after round; per run it prints the generator
 * threads' CPU per packet, their cores, lateness, and the sink's CPU per packet (a Node
 * process receiving, for scale). On loopback the kernel's delivery into the sink's socket is
 * done in the sender's system call, so it is part of the generator's figure.
 *
 *   npm run build && node bench/generator-cost.mjs [--calls 500] [--seconds 5] [--rounds 2]
 *     [--modes legs,replay,replay-per-leg] [--gen-threads N] [--gen-pps N] [--out FILE.json]
 *
 * `--gen-threads` applies to `legs` (default 2); the replay modes use one thread.
 */
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CODECS, encodePayloads, synthConversation } from './audio.mjs';
import { procCpuSeconds } from './daemon.mjs';
import { Generator } from './generator.mjs';

const MODES = {
  legs: (o) => ({ genMode: 'legs', genSockets: 'per-leg', genThreads: o.threads }),
  replay: () => ({ genMode: 'replay', genSockets: 'shared', genThreads: 1 }),
  'replay-per-leg': () => ({ genMode: 'replay', genSockets: 'per-leg', genThreads: 1 }),
};
const CLIP_SECONDS = 60;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 2) => (x === null || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

function parseArgs(argv) {
  const o = { calls: 500, seconds: 5, rounds: 2, modes: Object.keys(MODES), threads: 2, pps: 0, out: '' };
  for (let i = 0; i < argv.length; i++) {
    const v = () => argv[++i];
    switch (argv[i]) {
      case '--calls': o.calls = Number(v()); break;
      case '--seconds': o.seconds = Number(v()); break;
      case '--rounds': o.rounds = Number(v()); break;
      case '--modes': o.modes = v().split(','); break;
      case '--gen-threads': o.threads = Number(v()); break;
      case '--gen-pps': o.pps = Number(v()); break;
      case '--out': o.out = v(); break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (!o.modes.every((m) => MODES[m])) throw new Error(`--modes: a comma list of ${Object.keys(MODES).join(', ')}`);
  if (!(o.calls >= 1 && o.seconds >= 1 && o.rounds >= 1)) throw new Error('--calls, --seconds and --rounds must be 1 or more');
  return o;
}

/** The sink: a child process with one bound, reading UDP socket per leg. */
function sinkMain() {
  const legs = Number(process.argv[3]);
  let received = 0;
  const ports = [];
  const socks = [];
  for (let i = 0; i < legs; i++) {
    const s = createSocket('udp4');
    s.on('message', () => received++);
    socks.push(s);
    s.bind(0, '127.0.0.1', () => {
      ports[i] = s.address().port;
      if (ports.filter(Boolean).length === legs) process.send({ ports });
    });
  }
  // The parent gone (ended or killed): so is the sink.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m) => {
    if (m === 'count') process.send({ received });
    else if (m === 'end') process.disconnect();
  });
}

async function runMode(o, audio, codec, mode, sink) {
  const gen = Generator.fromOptions({ ...MODES[mode](o), genPps: o.pps }, audio, codec);
  await gen.ready;
  const frames = audio.parties[0].frames;
  const at = performance.timeOrigin + performance.now() + 50;
  const adds = [];
  for (let c = 0; c < o.calls; c++) {
    const f = Math.floor(Math.random() * frames);
    adds.push(gen.add(`${c}:0`, sink.ports[2 * c], 0, f, at), gen.add(`${c}:1`, sink.ports[2 * c + 1], 1, f, at));
  }
  await Promise.all(adds);
  // The first second is left out: legs starting together, the JIT.
  await sleep(Math.max(0, at - performance.timeOrigin - performance.now()) + 1000);
  const from = { t: performance.now(), gen: gen.cpuSeconds(), sink: procCpuSeconds(sink.pid), pk: gen.packets(), rx: await sink.count() };
  await sleep(o.seconds * 1000);
  const to = { t: performance.now(), gen: gen.cpuSeconds(), sink: procCpuSeconds(sink.pid), pk: gen.packets(), rx: await sink.count() };
  const stops = [];
  for (let c = 0; c < o.calls; c++) stops.push(gen.stop(`${c}:0`), gen.stop(`${c}:1`));
  await Promise.all(stops);
  await gen.close();
  const s = gen.summary();
  const secs = (to.t - from.t) / 1000;
  const sent = to.pk.sent - from.pk.sent;
  const rx = to.rx - from.rx;
  return {
    mode, threads: s.threads, sockets: s.sockets, calls: o.calls, seconds: round(secs, 1), pps: round(sent / secs, 0), ppsCap: s.ppsCap,
    genCpuUsPerPacket: round(((to.gen - from.gen) * 1e6) / sent), genCores: round((to.gen - from.gen) / secs, 3),
    sinkCpuUsPerPacket: rx > 0 ? round(((to.sink - from.sink) * 1e6) / rx) : null, sinkReceivedPct: round((100 * rx) / sent, 3),
    latePct: round(s.latePct, 4), lateMs: s.lateMs, capSkipped: s.capSkipped, legPps: s.legPps,
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const codec = CODECS.pcmu;
  const pcm = synthConversation('continuous', codec.rate, CLIP_SECONDS);
  const audio = { parties: pcm.map((p) => encodePayloads('pcmu', p)) };
  const child = fork(new URL(import.meta.url).pathname, ['--sink', String(2 * o.calls)]);
  const sink = { pid: child.pid, ports: (await new Promise((r) => child.once('message', r))).ports };
  sink.count = () => new Promise((r) => {
    child.once('message', (m) => r(m.received));
    child.send('count');
  });
  const runs = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      // Alternating order, so no mode always runs first in a round.
      const order = r % 2 === 0 ? o.modes : [...o.modes].reverse();
      for (const mode of order) {
        const x = await runMode(o, audio, codec, mode, sink);
        x.round = r + 1;
        runs.push(x);
        console.log(`${mode.padEnd(15)} ${x.threads} thread(s) ${x.pps} pps: generator ${x.genCpuUsPerPacket} µs/packet (${x.genCores} cores), sink ${x.sinkCpuUsPerPacket} µs/packet, late ${x.latePct} % (p50/p99/max ${x.lateMs.p50}/${x.lateMs.p99}/${x.lateMs.max} ms)${x.capSkipped ? `, cap skipped ${x.capSkipped} (${x.legPps} pps per leg)` : ''}`);
      }
    }
  } finally {
    child.send('end');
  }
  const med = (xs) => {
    const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
    return s.length ? round(s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
  };
  const summary = Object.fromEntries(o.modes.map((m) => [m, { genCpuUsPerPacket: med(runs.filter((x) => x.mode === m).map((x) => x.genCpuUsPerPacket)) }]));
  const base = summary.legs?.genCpuUsPerPacket;
  for (const v of Object.values(summary)) v.vsLegs = base ? round(v.genCpuUsPerPacket / base, 3) : null;
  console.log('median µs per packet:', Object.entries(summary).map(([m, v]) => `${m} ${v.genCpuUsPerPacket}${v.vsLegs !== null ? ` (× legs ${v.vsLegs})` : ''}`).join(', '), `; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (o.out) writeFileSync(o.out, JSON.stringify({ date: new Date().toISOString(), options: o, runs, summary }, null, 2) + '\n');
}

if (process.argv[2] === '--sink') sinkMain();
else main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
