#!/usr/bin/env node
/**
 * tallenne capacity bench. See bench/README.md.
 *
 *   npm run bench -- --calls N --seconds S [--codec pcmu|pcma|g722|opus] [--srtp SUITE] [--find-max]
 *   npm run bench -- --chaos N [--calls SLOTS] [--seconds MAX_CALL_S]   (bench/chaos.mjs)
 *
 * Starts the real daemon (own process, temp data dir, loopback), places N concurrent SIPREC
 * calls with two RTP legs each at real-time pace, measures the daemon from outside (/proc,
 * /metrics, its log lines), and in the same run measures the bare-libopus floor and the
 * ffmpeg-per-leg baseline on the same audio. Prints a table; writes JSON with --out.
 */
import { performance } from 'node:perf_hooks';
import { cpus, totalmem, release } from 'node:os';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SRTP_SUITES } from '../dist/rtp/srtp-suites.js';
import { CODECS, encodePayloads, synthConversation, talkFraction } from './audio.mjs';
import { SiprecClient, siprecOffer } from './sip-uac.mjs';
import { BenchDaemon, REPO } from './daemon.mjs';
import { Generator, GEN_MODES, GEN_SOCKETS } from './generator.mjs';
import { PerfProfile, PERF_OBJECTS, PERF_THREADS } from './perf-profile.mjs';
import { measureFloor } from './floor.mjs';
import { FfmpegLeg, baselineDir, removeBaselineDir } from './baseline.mjs';
import { measureIndex, measurePutCost } from './index-load.mjs';
import { measureStorageCompare } from './storage-compare.mjs';
import { systemSnapshot, othersBetween } from './system-load.mjs';
import { measureLongSpool } from './long-spool.mjs';
import { runChaos, chaosReport } from './chaos.mjs';
import { median, quantile } from './stats.mjs';

const CLIP_SECONDS = 60;
const HANGUP_AFTER_MEDIA_MS = 200;
const AUDIO_KINDS = ['conversational', 'continuous', 'tone'];
/** --stages: the stage clock times 1 call in this many of each stage. */
const DEFAULT_STAGE_PERIOD = 16;
/** The stage clock's worker threads post every 250 ms; a phase's last figures wait this long. */
const STAGE_SETTLE_MS = 600;
/** While waiting for the last recordings, failures are read from /metrics this often. */
const DRAIN_SCRAPE_MS = 2000;
/**
 * A level is clean when every call was answered, less than 0.01 % of packets were lost or sent
 * late, and no --gen-pps cap held the generator below the calls' rate.
 */
const clean = (x) => x.answered === x.offered && x.lossPct < 0.01 && x.generator.latePct < 0.01 && !x.generator.capLimited;
const FIND_MAX_LEVELS = [25, 50, 100, 150, 200, 300, 400, 500, 750, 1000, 1250, 1500, 2000, 2500, 3000];

function parseArgs(argv) {
  const o = {
    calls: 10, seconds: 30, codec: 'pcmu', audio: 'both', findMax: false, complexity: 5, bitrate: 24000,
    workers: 0, setupRate: 100, genThreads: 2, baselineCalls: -1, out: '', skipSilence: true, drainTimeout: 900,
    maxLevel: 3000, floor: true, indexEntries: 0, indexBackend: 'lmdb', indexUrl: undefined, storageCompare: 0, indexQueries: 300, longSpoolHours: 0, stopAtSustained: false, srtp: '', chaos: 0, keepData: false,
    repeat: 1, stages: 0, against: '', sustain: 0, spread: false,
    genMode: 'legs', genSockets: 'shared', genPps: 0, perf: false, rtpReceive: '',
  };
  const given = new Set();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    given.add(a);
    switch (a) {
      case '--chaos': o.chaos = Number(v()); break;
      case '--keep-data': o.keepData = true; break;
      case '--note': o.note = v(); break;
      case '--calls': o.calls = Number(v()); break;
      case '--seconds': o.seconds = Number(v()); break;
      case '--codec': o.codec = v(); break;
      case '--srtp': o.srtp = v(); break;
      case '--audio': o.audio = v(); break;
      case '--find-max': o.findMax = true; break;
      case '--stop-at-sustained': o.stopAtSustained = true; break;
      case '--max-level': o.maxLevel = Number(v()); break;
      case '--complexity': o.complexity = Number(v()); break;
      case '--bitrate': o.bitrate = Number(v()); break;
      case '--workers': o.workers = Number(v()); break;
      case '--setup-rate': o.setupRate = Number(v()); break;
      case '--gen-threads': o.genThreads = Number(v()); break;
      case '--gen-mode': o.genMode = v(); break;
      case '--gen-sockets': o.genSockets = v(); break;
      case '--gen-pps': o.genPps = Number(v()); break;
      case '--baseline-calls': o.baselineCalls = Number(v()); break;
      case '--no-skip-silence': o.skipSilence = false; break;
      case '--drain-timeout': o.drainTimeout = Number(v()); break;
      case '--no-floor': o.floor = false; break;
      case '--out': o.out = v(); break;
      case '--index-entries': o.indexEntries = Number(v()); break;
      case '--index': o.indexBackend = v(); break;
      case '--index-url': o.indexUrl = v(); break;
      case '--index-queries': o.indexQueries = Number(v()); break;
      case '--storage-compare': o.storageCompare = Number(v()); break;
      case '--long-spool-hours': o.longSpoolHours = Number(v()); break;
      case '--repeat': o.repeat = Number(v()); break;
      case '--sustain': o.sustain = Number(v()); break;
      case '--spread': o.spread = true; break;
      case '--perf': o.perf = true; break;
      case '--rtp-receive': o.rtpReceive = v(); break;
      case '--stages': o.stages = o.stages || DEFAULT_STAGE_PERIOD; break;
      case '--stage-period': o.stages = Number(v()); break;
      case '--against': o.against = v(); break;
      case '--help': case '-h':
        console.log('npm run bench -- --calls N --seconds S [--codec pcmu|pcma|g722|opus] [--srtp SUITE] [--audio conversational|continuous|tone|both|LIST] [--repeat N] [--sustain S] [--spread] [--stages] [--stage-period N] [--perf] [--rtp-receive auto|batched|node] [--against DIR] [--find-max] [--complexity 0-10] [--bitrate BPS] [--workers N] [--setup-rate CPS] [--gen-threads N] [--gen-mode legs|replay|sendmmsg] [--gen-sockets shared|per-leg] [--gen-pps N] [--baseline-calls N] [--index-entries N [--index lmdb|postgres] [--index-url URL] [--index-queries N]] [--storage-compare RECORDINGS] [--long-spool-hours H] [--out FILE.json]\n       npm run bench -- --chaos N [--calls SLOTS] [--seconds MAX_CALL_S] [--keep-data] [--note TEXT] [--out FILE.json]');
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (!CODECS[o.codec]) throw new Error(`--codec must be one of ${Object.keys(CODECS).join(', ')}`);
  if (o.srtp && !Object.hasOwn(SRTP_SUITES, o.srtp)) throw new Error(`--srtp must be one of ${Object.keys(SRTP_SUITES).join(', ')}`);
  o.kinds = o.audio === 'both' ? ['conversational', 'continuous'] : o.audio.split(',');
  if (o.kinds.length === 0 || !o.kinds.every((k) => AUDIO_KINDS.includes(k))) throw new Error(`--audio must be both or a comma list of ${AUDIO_KINDS.join(', ')}`);
  if (!Number.isInteger(o.repeat) || o.repeat < 1) throw new Error('--repeat must be a whole number of runs, at least 1');
  if (!Number.isInteger(o.stages) || o.stages < 0) throw new Error('--stage-period must be a whole number (1: time every call)');
  if (o.findMax && (o.repeat > 1 || o.stages || o.against)) throw new Error('--find-max runs once, without --repeat, --stages or --against');
  if (!(o.sustain >= 0)) throw new Error('--sustain takes seconds');
  if (o.findMax && o.sustain) throw new Error('--find-max runs its own sustained levels (3 × --seconds each)');
  if (o.stages && o.against) throw new Error('--stages and --against are separate runs');
  if (!(o.calls >= 0) || !(o.seconds >= 1)) throw new Error('--calls must be 0 or more (0: only the index, storage and long-spool measurements), --seconds at least 1');
  if (!(Number.isInteger(o.indexQueries) && o.indexQueries >= 100)) throw new Error('--index-queries needs 100 or more queries of each kind');
  if (!(Number.isInteger(o.storageCompare) && o.storageCompare >= 0)) throw new Error('--storage-compare needs a whole number of recordings');
  if (o.baselineCalls < 0) o.baselineCalls = Math.min(o.calls, 4);
  if (o.rtpReceive && !['auto', 'batched', 'node'].includes(o.rtpReceive)) throw new Error('--rtp-receive must be auto, batched or node');
  if (!GEN_MODES.includes(o.genMode)) throw new Error(`--gen-mode must be one of ${GEN_MODES.join(', ')}`);
  if (!GEN_SOCKETS.includes(o.genSockets)) throw new Error(`--gen-sockets must be one of ${GEN_SOCKETS.join(', ')}`);
  if (!(Number.isInteger(o.genPps) && o.genPps >= 0)) throw new Error('--gen-pps must be a whole number of packets per second (0: no cap)');
  // The replay mode sends from one thread unless told otherwise; the C sender is one process.
  if (o.genMode === 'replay' && !given.has('--gen-threads')) o.genThreads = 1;
  if (o.genMode === 'sendmmsg') {
    if (given.has('--gen-threads') && o.genThreads !== 1) throw new Error('--gen-mode sendmmsg is one process (no --gen-threads)');
    if (o.genSockets !== 'shared') throw new Error('--gen-mode sendmmsg sends from one socket (--gen-sockets shared)');
    if (o.srtp) throw new Error('--gen-mode sendmmsg sends plain RTP (no --srtp)');
    o.genThreads = 1;
  }
  if (!(Number.isInteger(o.genThreads) && o.genThreads >= 1)) throw new Error('--gen-threads must be 1 or more');
  if (!(Number.isInteger(o.chaos) && o.chaos >= 0)) throw new Error('--chaos needs a whole number of kills');
  if (o.chaos > 0) {
    // Chaos: call slots placing calls of 1 s to --seconds, one daemon life per kill.
    if (!given.has('--calls')) o.calls = 12;
    if (!given.has('--seconds')) o.seconds = 6;
    if (!given.has('--audio')) o.kinds = ['conversational'];
    if (o.calls < 1 || o.kinds.length !== 1) throw new Error('--chaos needs --calls of 1 or more and one --audio kind');
  }
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const epochNow = () => performance.timeOrigin + performance.now();

const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** Audio of one kind, synthesised and encoded once. */
function prepareAudio(codecName, kind) {
  const codec = CODECS[codecName];
  const pcm = synthConversation(kind, codec.rate, CLIP_SECONDS);
  return { kind, pcm, rate: codec.rate, parties: pcm.map((p) => encodePayloads(codecName, p)), talk: talkFraction(kind, CLIP_SECONDS) };
}

/** Sum of a metric over all label sets matching a prefix, e.g. 'tallenne_calls_total{result="recorded"}'. */
const metric = (m, key) => m.get(key) ?? 0;

/**
 * One load phase against the running daemon: N calls of S seconds, staggered set-up, then
 * BYE each, then wait for every recording to be in the index (or the drain timeout).
 */
async function runLoad(daemon, o, audio, calls, seconds, sustainSeconds = 0) {
  const codec = CODECS[o.codec];
  const gen = Generator.fromOptions(o, audio, codec);
  const sip = new SiprecClient(daemon.sipPort);
  await sip.open();
  const m0 = await daemon.metrics();
  const mem0 = daemon.memory();
  const cpu0 = daemon.cpuSeconds();
  const main0 = daemon.mainThreadCpuSeconds();
  const genCpu0 = process.cpuUsage();
  await gen.ready;
  const genThreads0 = gen.cpuSeconds();
  const t0 = Date.now();
  const endedBefore = new Set(daemon.ended.keys());
  const storedBefore = daemon.stored.size;
  let peakRss = mem0.rss;
  let loopP99 = 0;
  let queueMax = 0;
  let sampling = true;
  /** [seconds since start, event-loop p99 ms since the last scrape, active calls, encode queue] */
  const series = [];
  const sampler = (async () => {
    let k = 0;
    while (sampling) {
      const m = daemon.memory();
      if (m) peakRss = Math.max(peakRss, m.rss);
      if (k++ % 4 === 0) {
        try {
          const mm = await daemon.metrics();
          loopP99 = Math.max(loopP99, metric(mm, 'nodejs_eventloop_lag_p99_seconds'));
          series.push([round((Date.now() - t0) / 1000, 1), round(metric(mm, 'nodejs_eventloop_lag_p99_seconds') * 1000, 1), metric(mm, 'tallenne_active_calls'), metric(mm, 'tallenne_encode_queue_length')]);
          queueMax = Math.max(queueMax, metric(mm, 'tallenne_encode_queue_length'));
        } catch {
          // a scrape that fails under load is retried at the next tick
        }
      }
      await sleep(500);
    }
  })();

  const results = { offered: 0, answered: 0, rejected: 0, failed: 0, byeOk: 0, byeAt: [] };
  // The steady window: every call up and sending, none ended yet. Capture alone runs then
  // (the encoder works only on ended calls), so its CPU and memory per call are measured here.
  let started = 0;
  const steady = { from: null, to: null };
  // With the stage clock on, the window's main-thread CPU and stage figures tell how much
  // capture costs per packet outside our JS (Node's datagram delivery).
  // The window's packets come from /metrics (received) and the generator's counters (sent).
  const mark = () => ({ t: Date.now(), cpu: daemon.cpuSeconds(), main: daemon.mainThreadCpuSeconds(), mem: daemon.memory(), metrics: daemon.metrics().catch(() => null), gen: gen.cpuSeconds(), genPackets: gen.packets() });
  // --perf: the profiler samples the daemon through the same window (not the stage clock's runs).
  let profile = null;
  let profiled = null;
  const markUp = () => {
    if (++started !== calls) return;
    steady.from = mark();
    if (o.perf && !daemon.stages) profile = new PerfProfile(daemon.pid);
  };
  const markDown = () => {
    if (steady.to || !steady.from) return;
    steady.to = mark();
    if (profile) profiled = profile.stop();
  };
  const frames = audio.parties[0].frames;
  // Sustained mode: each of the `calls` slots places a new call as soon as its last one
  // ended, until sustainSeconds have passed, so capture and encoding run at the same time.
  const until = t0 + sustainSeconds * 1000;
  const slot = async (i) => {
    await sleep((i * 1000) / o.setupRate);
    let round = 0;
    do {
      await one(i + round * calls, round === 0);
      round++;
    } while (sustainSeconds > 0 && Date.now() + (seconds + 1) * 1000 < until);
  };
  const one = async (i, first) => {
    results.offered++;
    // --srtp: a fresh SDES key per leg, offered in a=crypto and used by the generator.
    const keys = o.srtp ? [0, 1].map(() => {
      const s = SRTP_SUITES[o.srtp];
      return { suite: o.srtp, keySalt: randomBytes(s.keyBytes + s.saltBytes).toString('base64') };
    }) : null;
    let call;
    try {
      call = await sip.invite(i, siprecOffer(codec, i, keys));
    } catch {
      results.failed++;
      return;
    }
    if (call.status !== 200 || call.ports.length < 2) {
      results.rejected++;
      return;
    }
    results.answered++;
    const startFrame = Math.floor(Math.random() * frames);
    const at = epochNow() + 5;
    await Promise.all([gen.add(`${i}:0`, call.ports[0], 0, startFrame, at, keys?.[0]), gen.add(`${i}:1`, call.ports[1], 1, startFrame, at, keys?.[1])]);
    if (first) markUp();
    // --spread: lengths from 0.5× to 1.5× --seconds (a low-discrepancy sequence by call
    // number, the same in every run), so hang-ups come spread out, as in a contact centre.
    const length = o.spread ? seconds * (0.5 + ((i * 0.6180339887) % 1)) : seconds;
    await sleep(Math.max(0, at + length * 1000 - epochNow()));
    markDown();
    await Promise.all([gen.stop(`${i}:0`), gen.stop(`${i}:1`)]);
    // Media stops, then the hang-up follows a moment later, as with a real SBC; a BYE sent
    // in the same millisecond could overtake the last packets still in the socket buffers.
    await sleep(HANGUP_AFTER_MEDIA_MS);
    try {
      if ((await sip.bye(call.dialog)) === 200) results.byeOk++;
    } catch {
      results.failed++;
    }
    results.byeAt.push(Date.now());
  };
  await Promise.all(Array.from({ length: calls }, (_, i) => slot(i)));
  const lastBye = Math.max(...results.byeAt, Date.now());
  const genCpu = process.cpuUsage(genCpu0);
  const genThreadCpu = gen.cpuSeconds() - genThreads0;
  await gen.close();
  sip.close();

  // Wait until every answered call of this phase is stored (or failed), or the timeout.
  const failed0 = metric(m0, 'tallenne_calls_total{result="failed"}');
  // Stored recordings are seen in the daemon's log as they happen; /metrics (for failures) is
  // scraped only every 2 s, as a scrape costs the daemon CPU that would be charged to the calls.
  let m1 = await daemon.metrics();
  let scrapedAt = Date.now();
  const deadline = Date.now() + o.drainTimeout * 1000;
  for (;;) {
    const failed = metric(m1, 'tallenne_calls_total{result="failed"}') - failed0;
    if (daemon.stored.size - storedBefore + failed >= results.answered || Date.now() > deadline) break;
    await sleep(50);
    if (Date.now() - scrapedAt >= DRAIN_SCRAPE_MS) {
      m1 = await daemon.metrics();
      scrapedAt = Date.now();
    }
  }
  m1 = await daemon.metrics();
  const drainedAt = Date.now();
  if (o.stages) {
    // The encoder threads post their stage figures every 250 ms: wait for the last post (in
    // the runs without the clock too, so both count the same idle moment).
    await sleep(STAGE_SETTLE_MS);
    m1 = await daemon.metrics();
  }
  const cpu1 = daemon.cpuSeconds();
  const main1 = daemon.mainThreadCpuSeconds();
  sampling = false;
  await sampler;
  // The kernel's high-water mark of the daemon's RSS (its whole life so far, warm-up included).
  const memHigh = daemon.memory()?.hwm ?? 0;

  const recorded = metric(m1, 'tallenne_calls_total{result="recorded"}') - metric(m0, 'tallenne_calls_total{result="recorded"}');
  const truncated = metric(m1, 'tallenne_calls_total{result="truncated"}') - metric(m0, 'tallenne_calls_total{result="truncated"}');
  const received = metric(m1, 'tallenne_rtp_packets_total') - metric(m0, 'tallenne_rtp_packets_total');
  // Batched receive's reads (wake-ups and drains that found packets) over the phase, hang-ups included.
  const batches = metric(m1, 'tallenne_rtp_receive_batches_total') - metric(m0, 'tallenne_rtp_receive_batches_total');
  const lostRfc = metric(m1, 'tallenne_rtp_packets_lost_total') - metric(m0, 'tallenne_rtp_packets_lost_total');
  const encodeCpu = metric(m1, 'tallenne_encode_duration_seconds_sum') - metric(m0, 'tallenne_encode_duration_seconds_sum');
  const sent = gen.totals.sent;
  // Legs whose RFC 3550 interarrival jitter at hang-up exceeded one packet time (20 ms):
  // packets that reached the daemon late, whoever delayed them.
  const jitterCount = metric(m1, 'tallenne_rtp_jitter_seconds_count') - metric(m0, 'tallenne_rtp_jitter_seconds_count');
  const jitterLe20 = metric(m1, 'tallenne_rtp_jitter_seconds_bucket{le="0.02"}') - metric(m0, 'tallenne_rtp_jitter_seconds_bucket{le="0.02"}');
  const dropped = {};
  for (const [k, v] of m1) {
    const mm = /^tallenne_rtp_packets_dropped_total\{reason="([^"]+)"\}$/.exec(k);
    if (mm && v - metric(m0, k) > 0) dropped[mm[1]] = v - metric(m0, k);
  }
  const byeToIndex = [];
  let callSeconds = 0;
  for (const [id, endedAt] of daemon.ended) {
    if (endedBefore.has(id)) continue;
    const st = daemon.stored.get(id);
    if (!st) continue;
    byeToIndex.push(st.time - endedAt);
    callSeconds += st.durationMs / 1000;
  }
  const cpu = cpu1 - cpu0;
  const steadyS = steady.from && steady.to ? (steady.to.t - steady.from.t) / 1000 : 0;
  const win = steadyS > 0 ? { m0: await steady.from.metrics, m1: await steady.to.metrics } : null;
  const capture = steadyS >= 1
    ? {
        ...windowPackets(steady, win, steadyS),
        windowSeconds: round(steadyS, 1),
        cpuUsPerCallSecond: round(((steady.to.cpu - steady.from.cpu) * 1e6) / (steadyS * calls), 1),
        cpuCoresUsed: round((steady.to.cpu - steady.from.cpu) / steadyS, 3),
        rssPerCallKb: round((Math.max(steady.from.mem.rss, steady.to.mem.rss) - mem0.rss) / 1024 / calls, 1),
        rssMb: round(Math.max(steady.from.mem.rss, steady.to.mem.rss) / 2 ** 20, 1),
      }
    : null;
  // A window that never closed (a call failed to end) still stops the profiler.
  if (profile && !profiled) profiled = profile.stop();
  const perf = profiled ? await profiled : null;
  if (perf && !perf.error && capture) {
    // % of the window's samples, and µs per call-second from the window's CPU.
    perf.usPerCallSecond = Object.fromEntries(Object.entries(perf.cells).map(([t, row]) => [t, Object.fromEntries(Object.entries(row).map(([k, v]) => [k, round((v / 100) * capture.cpuUsPerCallSecond, 0)]))]));
  }
  const stages = daemon.stages && callSeconds > 0
    ? stageTable({ m0, m1, cpu, main: main1 - main0, callSeconds, received, steady: win ? { from: steady.from, to: steady.to, ...win } : null })
    : null;
  const phase = {
    calls, seconds, audio: audio.kind, sustainSeconds, stageClock: daemon.stages ? o.stages : 0,
    offered: results.offered, answered: results.answered, recorded: recorded + truncated, truncated, sipFailed: results.failed, rejected: results.rejected,
    sipRetransmits: sip.retransmits,
    packetsSent: sent, packetsReceived: received, rtpBatches: batches, packetsPerBatch: batches > 0 ? round(received / batches, 1) : null, lossPct: sent > 0 ? (100 * Math.max(0, sent - received)) / sent : 0, rfc3550Lost: lostRfc,
    // cpuSeconds: the whole bench process (generator, SIP, scrapes); threadCpuSeconds: the generator's threads alone.
    generator: { ...gen.summary(), cpuSeconds: round((genCpu.user + genCpu.system) / 1e6), threadCpuSeconds: round(genThreadCpu), cpuUsPerPacket: sent > 0 ? round((genThreadCpu * 1e6) / sent) : null },
    legsJitterOver20ms: jitterCount - jitterLe20, legsWithJitter: jitterCount, daemonDropped: dropped,
    recordedCallSeconds: round(callSeconds, 1),
    daemonCpuSeconds: round(cpu, 2),
    daemonCpuUsPerPacket: received > 0 ? round((cpu * 1e6) / received) : null,
    mainThreadCpuSeconds: round(main1 - main0, 2),
    stages,
    perf,
    cpuSecondsPerCallMinute: callSeconds > 0 ? round((cpu * 60) / callSeconds, 4) : null,
    cpuUsPerCallSecond: callSeconds > 0 ? round((cpu * 1e6) / callSeconds, 1) : null,
    encodeCpuSeconds: round(encodeCpu, 2),
    encodeUsPerCallSecond: callSeconds > 0 ? round((encodeCpu * 1e6) / callSeconds, 1) : null,
    encodeRealtimeFactor: encodeCpu > 0 ? round(callSeconds / encodeCpu, 1) : null,
    capture,
    rssBeforeMb: round(mem0.rss / 2 ** 20, 1), peakRssMb: round(peakRss / 2 ** 20, 1), rssHighWaterMb: round(memHigh / 2 ** 20, 1),
    rssPerCallKb: round((peakRss - mem0.rss) / 1024 / calls, 1),
    eventLoopP99Ms: round(loopP99 * 1000, 2),
    series,
    encodeQueueMax: queueMax,
    byeToIndexMs: { p50: quantile(byeToIndex, 0.5), p99: quantile(byeToIndex, 0.99), n: byeToIndex.length },
    drainAfterLastByeS: round((drainedAt - lastBye) / 1000, 1),
    wallSeconds: round((drainedAt - t0) / 1000, 1),
  };
  phase.limit = limitOf(phase);
  return phase;
}

/**
 * CPU per packet in the steady window, the daemon's (per packet received) next to the
 * generator threads' (per packet sent), and the cores each used: who is the limit.
 */
function windowPackets(steady, win, seconds) {
  const received = win?.m0 && win?.m1 ? metric(win.m1, 'tallenne_rtp_packets_total') - metric(win.m0, 'tallenne_rtp_packets_total') : null;
  const sent = steady.to.genPackets.sent - steady.from.genPackets.sent;
  const genCpu = steady.from.gen !== null && steady.to.gen !== null ? steady.to.gen - steady.from.gen : null;
  return {
    packetsReceived: received,
    cpuUsPerPacket: received ? round(((steady.to.cpu - steady.from.cpu) * 1e6) / received, 2) : null,
    generatorPacketsSent: sent,
    generatorCpuUsPerPacket: genCpu !== null && sent > 0 ? round((genCpu * 1e6) / sent, 2) : null,
    generatorCoresUsed: genCpu !== null ? round(genCpu / seconds, 3) : null,
  };
}

/**
 * Who held the phase back: the generator (its cap skipped packets, or it sent late) and/or
 * the daemon (it lost packets), by the same 0.01 % bounds as find-max; 'neither' if none.
 */
function limitOf(r) {
  const g = r.generator;
  const who = [];
  if (g.capLimited) who.push(`generator cap (${g.legPps} of 50 pps per leg)`);
  if (g.latePct >= 0.01) who.push(`generator late (${round(g.latePct, 3)} %)`);
  if (r.lossPct >= 0.01) who.push(`daemon loss (${round(r.lossPct, 3)} %)`);
  return who.length ? who.join(', ') : 'neither';
}

const stageMetric = (m, stage) => metric(m, `tallenne_stage_cpu_seconds{stage="${stage}"}`);
const stageCalls = (m, stage) => metric(m, `tallenne_stage_calls{stage="${stage}"}`);

/**
 * The phase's CPU itemised per stage, in µs per recorded call-second. Threads from the kernel
 * (the whole process and its main thread from /proc, the encoder threads by their own clocks),
 * stages inside a thread from the daemon's stage clock; each thread's remainder is a row of
 * its own, so the rows add up to the total.
 */
function stageTable({ m0, m1, cpu, main, callSeconds, received, steady }) {
  const raw = (stage) => Math.max(0, stageMetric(m1, stage) - stageMetric(m0, stage));
  const enc = Math.max(0, metric(m1, 'tallenne_stage_worker_cpu_seconds') - metric(m0, 'tallenne_stage_worker_cpu_seconds'));
  // Wall time can exceed a thread's CPU when the thread waits for a core (a busy box); then a
  // thread's stages are scaled down together so that they fit in its CPU.
  const encScale = raw('encoderRecord') > enc && enc > 0 ? enc / raw('encoderRecord') : 1;
  const mainScale = raw('captureRtp') > main && main > 0 ? main / raw('captureRtp') : 1;
  const d = (stage) => raw(stage) * (stage === 'captureRtp' || stage === 'spoolAppend' ? mainScale : encScale);
  const captureRtp = d('captureRtp');
  // Node's own work per datagram (libuv → Buffer → 'message'), from the steady window, where
  // capture is about all the main thread does.
  let receivePerPacket = null;
  if (steady?.m0 && steady?.m1) {
    const packets = metric(steady.m1, 'tallenne_rtp_packets_total') - metric(steady.m0, 'tallenne_rtp_packets_total');
    const js = stageMetric(steady.m1, 'captureRtp') - stageMetric(steady.m0, 'captureRtp');
    if (packets > 0) receivePerPacket = Math.max(0, (steady.to.main - steady.from.main) - js) / packets;
  }
  const receive = receivePerPacket === null ? 0 : Math.min(Math.max(0, main - captureRtp), receivePerPacket * received);
  const record = d('encoderRecord');
  const inRecord = d('decode') + d('mix') + d('silence') + d('libopus') + d('ogg');
  const us = (x) => round((x * 1e6) / callSeconds, 1);
  const rows = {
    receive: us(receive),
    parse: us(Math.max(0, captureRtp - d('spoolAppend'))),
    spoolAppend: us(d('spoolAppend')),
    mainRest: us(Math.max(0, main - captureRtp - receive)),
    spoolReadScan: us(Math.max(0, enc - record)),
    decode: us(d('decode')),
    timeline: us(Math.max(0, record - inRecord)),
    mix: us(d('mix')),
    silence: us(d('silence')),
    libopus: us(d('libopus')),
    ogg: us(d('ogg')),
    otherThreads: us(Math.max(0, cpu - main - enc)),
    total: us(cpu),
  };
  const timed = Object.fromEntries(['captureRtp', 'spoolAppend', 'encoderRecord', 'decode', 'mix', 'silence', 'libopus', 'ogg'].map((k) => [k, stageCalls(m1, k) - stageCalls(m0, k)]));
  return { usPerCallSecond: rows, scaledToThreadCpu: { main: round(mainScale, 3), encoder: round(encScale, 3) }, receiveUsPerPacket: receivePerPacket === null ? null : round(receivePerPacket * 1e6, 2), encoderThreadCpuSeconds: round(enc, 2), stageCalls: timed };
}

/** Rows of the stage table: key, label. The rows add up to the total. */
const STAGE_ROWS = [
  ['receive', 'capture: receive (Node datagram delivery; per packet from the steady window)'],
  ['parse', 'capture: source check, SRTP, parse, RTP statistics'],
  ['spoolAppend', 'spool write: append (copy into the chunk)'],
  ['otherThreads', 'other threads: spool write/read syscalls and fsync (libuv), LMDB writer, V8 GC and compiler'],
  ['spoolReadScan', 'spool read: reading, scan pass, job handling, the encoder thread\'s GC'],
  ['decode', 'decode (G.711, G.722, Opus)'],
  ['timeline', 'timeline: statistics, placing, ring writes, frame split'],
  ['mix', 'timeline: mixing 20 ms frames'],
  ['silence', 'silence analysis'],
  ['libopus', 'libopus'],
  ['ogg', 'Ogg multistream muxing'],
  ['mainRest', 'everything else on the main thread: SIP, HTTP, metrics, timers, index, GC'],
  ['total', 'total'],
];

/** The ffmpeg-per-leg baseline on the same audio: `calls` calls of `seconds`. */
async function runBaseline(o, audio, calls, seconds) {
  const codec = CODECS[o.codec];
  const dir = baselineDir();
  const gen = Generator.fromOptions(o, audio, codec);
  const legs = [];
  // Above Linux's ephemeral range (32768-60999), so no client socket of the box holds them.
  const basePort = 61000 + 2 * Math.floor(Math.random() * 1000);
  try {
    for (let i = 0; i < calls * 2; i++) {
      legs.push(new FfmpegLeg({ dir, port: basePort + 2 * i, codec, complexity: o.complexity, bitrate: o.bitrate / 2, index: i }));
    }
    // Every ffmpeg must be running, and then gets a moment to open its sockets: packets
    // before that would be lost to it.
    await Promise.all(legs.map((l) => l.started));
    await sleep(1500);
    const frames = audio.parties[0].frames;
    const at = epochNow() + 20;
    const adds = [];
    for (let c = 0; c < calls; c++) {
      const startFrame = Math.floor(Math.random() * frames);
      adds.push(gen.add(`${c}:0`, basePort + 4 * c, 0, startFrame, at), gen.add(`${c}:1`, basePort + 4 * c + 2, 1, startFrame, at));
    }
    await Promise.all(adds);
    const t = setInterval(() => legs.forEach((l) => l.sample()), 500);
    await sleep(seconds * 1000);
    clearInterval(t);
    for (const l of legs) l.sample();
    for (let c = 0; c < calls; c++) await Promise.all([gen.stop(`${c}:0`), gen.stop(`${c}:1`)]);
    await Promise.all(legs.map((l) => l.stop()));
  } finally {
    await gen.close();
    removeBaselineDir(dir);
  }
  const failed = legs.filter((l) => l.error !== null);
  if (failed.length > 0) throw new Error(`the ffmpeg baseline failed on ${failed.length} of ${legs.length} legs: ${failed[0].error}`);
  const cpu = legs.reduce((s, l) => s + l.cpu, 0);
  const rss = legs.reduce((s, l) => s + l.peakRss, 0);
  return {
    calls, seconds, processes: legs.length,
    cpuUsPerCallSecond: round((cpu * 1e6) / (calls * seconds), 1),
    cpuSecondsPerCallMinute: round((cpu * 60) / (calls * seconds), 4),
    rssPerCallMb: round(rss / 2 ** 20 / calls, 1),
  };
}

function machine() {
  const c = cpus();
  let kernel = release();
  try {
    kernel = readFileSync('/proc/version', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    // not Linux
  }
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, memGb: round(totalmem() / 2 ** 30, 1), kernel, node: process.version };
}

function table(rows, cols) {
  const w = cols.map(([h, k]) => Math.max(h.length, ...rows.map((r) => String(k(r) ?? '–').length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c ?? '–').padEnd(w[i])).join(' | ')} |`;
  return [line(cols.map(([h]) => h)), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map((r) => line(cols.map(([, k]) => k(r))))].join('\n');
}

/**
 * The generator next to the daemon, per phase or level: its mode and cap, what the cap held
 * back, its lateness, CPU per packet of both sides (steady window: every call up, capture
 * only; and the whole phase), the daemon's peak RSS, and who was the limit.
 */
function generatorTable(rows) {
  const g = (r) => r.generator;
  return table(rows, [
    ['calls', (r) => r.calls], ['audio', (r) => r.audio],
    ['generator', (r) => `${g(r).mode} ×${g(r).threads}${g(r).mode === 'replay' ? ` ${g(r).sockets}` : ''}`], ['pps cap', (r) => g(r).ppsCap ?? 'none'],
    ['pps per leg', (r) => g(r).legPps], ['skipped by cap', (r) => g(r).capSkipped],
    ['late %', (r) => round(g(r).latePct, 4)], ['late p50/p99/max ms', (r) => `${g(r).lateMs?.p50 ?? '–'}/${g(r).lateMs?.p99 ?? '–'}/${g(r).lateMs?.max ?? '–'}`],
    ['gen cores (steady)', (r) => r.capture?.generatorCoresUsed], ['gen µs/pkt (steady)', (r) => r.capture?.generatorCpuUsPerPacket],
    ['daemon cores (steady)', (r) => r.capture?.cpuCoresUsed], ['daemon µs/pkt (steady)', (r) => r.capture?.cpuUsPerPacket],
    ['gen µs/pkt (phase)', (r) => g(r).cpuUsPerPacket], ['daemon µs/pkt (phase)', (r) => r.daemonCpuUsPerPacket],
    ['RSS steady MB', (r) => r.capture?.rssMb], ['peak RSS MB', (r) => r.peakRssMb], ['RSS high-water MB', (r) => r.rssHighWaterMb],
    ['limit', (r) => r.limit],
  ]);
}

function report(res) {
  const out = [];
  out.push(`tallenne bench — ${res.options.codec.toUpperCase()}${res.options.srtp ? ` over SRTP (${res.options.srtp})` : ''}, Opus complexity ${res.options.complexity}, ${res.options.bitrate} bit/s per call, ${res.machine.cores} cores (${res.machine.cpu})`);
  if (res.phases.length > 0) {
    out.push('', table(res.phases, [
      ['audio', (r) => r.audio], ['calls', (r) => r.calls], ['offered', (r) => r.offered], ['answered', (r) => r.answered], ['recorded', (r) => r.recorded],
      ['pkts sent', (r) => r.packetsSent], ['pkts recv', (r) => r.packetsReceived], ['loss %', (r) => round(r.lossPct, 4)], ['gen late', (r) => r.generator.latePackets], ['legs jitter>20ms', (r) => r.legsJitterOver20ms],
      ['CPU s/call-min', (r) => r.cpuSecondsPerCallMinute], ['× floor', (r) => r.vsFloor], ['× ffmpeg CPU', (r) => r.vsFfmpegCpu],
      ['capture µs/call-s', (r) => r.capture?.cpuUsPerCallSecond], ['peak RSS MB', (r) => r.peakRssMb], ['RSS/call KB', (r) => r.capture?.rssPerCallKb ?? r.rssPerCallKb], ['× ffmpeg mem', (r) => r.vsFfmpegMem],
      ['loop p99 ms', (r) => r.eventLoopP99Ms], ['BYE→index p50/p99 ms', (r) => `${r.byeToIndexMs.p50 ?? '–'}/${r.byeToIndexMs.p99 ?? '–'}`], ['encode RTF', (r) => r.encodeRealtimeFactor],
    ]));
    out.push('', 'generator and daemon (steady: every call up, capture only; µs of CPU per packet; peak RSS sampled every 0.5 s, high-water from the kernel):', generatorTable(res.phases));
  }
  if (res.floor) out.push('', 'bare libopus floor (µs CPU per call-second, one stereo stream; mean of before and after the engine): ' + Object.entries(res.floor).map(([k, v]) => `${k} ${v.cpuUsPerCallSecond} (before ${v.before}, after ${v.after}; two mono streams ${v.monoPairUsPerCallSecond})`).join(', '));
  for (const r of res.runs ?? []) {
    const sy = r.system;
    out.push(`run ${r.repetition}: load average ${sy.loadStart?.join(' ')} at the start, ${sy.loadEnd?.join(' ')} at the end; other processes used ${sy.othersCpuSeconds} CPU s in ${sy.wallSeconds} s (${sy.othersCores} cores)${sy.top.length ? ': ' + sy.top.map((t) => `${t.name} ${t.cpuSeconds}`).join(', ') : ''}`);
  }
  if (res.summary && Object.keys(res.summary).length > 0) {
    const range = (x, d = 2) => (x ? `${round(x.median, d)} [${round(x.min, d)}–${round(x.max, d)}]` : '–');
    const sum = Object.entries(res.summary).map(([audio, v]) => ({ audio, ...v }));
    out.push('', `median [range] of ${res.runs.length} run(s):`, table(sum, [
      ['audio', (r) => r.audio], ['runs', (r) => r.runs], ['µs/call-s', (r) => range(r.cpuUsPerCallSecond, 0)], ['× floor (same audio)', (r) => range(r.vsFloorSameAudio)],
      ['× floor before', (r) => range(r.vsFloorBefore)], ['× floor after', (r) => range(r.vsFloorAfter)], ['× two-mono floor', (r) => range(r.vsMonoPairFloor)],
      ['floor before', (r) => range(r.floorBefore, 0)], ['floor after', (r) => range(r.floorAfter, 0)],
      ['with stage clock µs/call-s', (r) => range(r.instrumentedUsPerCallSecond, 0)], ['stage clock overhead %', (r) => range(r.stageClockOverheadPct, 1)],
      ['--against µs/call-s', (r) => range(r.againstUsPerCallSecond, 0)], ['--against × floor', (r) => range(r.againstVsFloorSameAudio)], ['this ÷ --against', (r) => range(r.vsAgainst, 3)],
    ]));
    const withStages = sum.filter((r) => r.stages);
    if (withStages.length > 0) {
      const pct = (r, key) => (r.stages[key] && r.stages.total?.median ? ` (${round((100 * r.stages[key].median) / r.stages.total.median, 0)} %)` : '');
      out.push('', `CPU per recorded call-second by stage, µs, median [range] of the runs with the stage clock (1 call in ${res.options.stages} timed):`, table(STAGE_ROWS.map(([key, label]) => ({ key, label })), [
        ['stage', (r) => r.label],
        ...withStages.map((a) => [a.audio, (r) => `${range(a.stages[r.key], 0)}${r.key === 'total' ? '' : pct(a, r.key)}`]),
      ]));
      out.push('index writes, measured apart (inside the main thread\'s rest and other threads): ' + withStages.map((a) => `${a.audio} ${range(a.stages.index, 1)}`).join(', ') + ` µs per call-second (${res.indexPut?.cpuUsPerPut} µs per write)`);
    }
  }
  for (const [audio, v] of Object.entries(res.summary ?? {})) {
    if (!v.perf) continue;
    const pc = (x) => (x ? `${round(x.median, 1)}` : '–');
    const pcr = (x) => (x ? `${round(x.median, 1)} [${round(x.min, 1)}–${round(x.max, 1)}]` : '–');
    out.push('', `${audio}: where the daemon's CPU went in the steady window by perf (% of the daemon's samples, median of ${v.perf.runs} run(s), [range] in the last column; the window's CPU was ${round(v.perf.steadyUsPerCallSecond?.median ?? 0, 0)} µs per call-second):`, table([...PERF_OBJECTS.map(([k, label]) => ({ k, label })), { k: null, label: 'all objects' }], [
      ['object', (r) => r.label],
      ...PERF_THREADS.map(([t, label]) => [label, (r) => pc(r.k ? v.perf.cells[t][r.k] : v.perf.threads[t])]),
      ['all threads', (r) => (r.k ? pcr(v.perf.objects[r.k]) : '100')],
    ]));
  }
  for (const p of res.phases ?? []) if (p.perf?.error) out.push(`perf (${p.audio}, ${p.calls} calls): ${p.perf.error}`);
  if (res.baseline) out.push('ffmpeg per leg baseline: ' + Object.entries(res.baseline).map(([k, v]) => `${k}: ${v.cpuUsPerCallSecond} µs CPU per call-second, ${v.rssPerCallMb} MB per call (${v.calls} calls)`).join('; '));
  if (res.findMax) {
    out.push('', table(res.findMax.levels, [
      ['calls', (r) => r.calls], ['mode', (r) => (r.sustainSeconds ? `sustained ${r.sustainSeconds} s` : 'one round')], ['offered', (r) => r.offered], ['loss %', (r) => round(r.lossPct, 4)], ['gen late', (r) => r.generator.latePackets], ['legs jitter>20ms', (r) => r.legsJitterOver20ms], ['drain s', (r) => r.drainAfterLastByeS],
      ['CPU µs/call-s', (r) => r.cpuUsPerCallSecond], ['capture µs/call-s', (r) => r.capture?.cpuUsPerCallSecond], ['RSS/call KB', (r) => r.capture?.rssPerCallKb ?? r.rssPerCallKb], ['loop p99 ms', (r) => r.eventLoopP99Ms], ['capture clean', (r) => r.captureClean], ['sustained', (r) => r.sustainedClean],
    ]));
    out.push('', generatorTable(res.findMax.levels));
    out.push(`highest clean capture level: ${res.findMax.captureCeiling} calls; highest sustained recording level: ${res.findMax.sustainedCeiling} calls`);
  }
  if (res.storageCompare) {
    const sc = res.storageCompare;
    out.push('', `finalisation after the encode (staged → stored and indexed), ${sc.recordings} recordings of ${sc.meanKb} KB on average, one at a time, LMDB index, ms:`);
    out.push(table([{ k: 'file system', ...sc.fs }, { k: 'S3 (Swift on loopback)', ...sc.s3 }, { k: 'ratio S3/fs', p50: sc.ratio.p50, p99: sc.ratio.p99 }], [['store', (r) => r.k], ['p50', (r) => r.p50], ['p99', (r) => r.p99]]));
  }
  if (res.index) {
    out.push('', `${res.index.backend} index with ${res.index.entries} entries (filled in ${res.index.fillSeconds} s), list queries of 50, ms:`);
    out.push(table(Object.entries(res.index.queries).map(([k, v]) => ({ k, ...v })), [['query', (r) => r.k], ['p50 ms', (r) => r.p50], ['p99 ms', (r) => r.p99], ['items', (r) => r.meanItems]]));
  }
  if (res.longSpool) {
    const l = res.longSpool;
    out.push('', `${l.hours} h spool (${l.spoolMb} MB) encoded at complexity ${l.complexity}: peak RSS ${l.peakRssMb} MB, ${l.cpuSeconds} CPU s, ${l.fileMb} MB of Opus`);
  }
  return out.join('\n');
}

/** Bare-libopus floors of every audio kind asked for (and continuous, the reference): stereo and the engine's two mono streams. */
function measureFloors(o, kinds, audio, monoPair = true) {
  const out = {};
  for (const k of [...new Set(['conversational', 'continuous', ...kinds])]) {
    const a = audio[k] ?? (audio[k] = prepareAudio(o.codec, k));
    // One pass of the clip each time: measured before and after, that is two passes per run.
    const args = { left: a.pcm[0], right: a.pcm[1], rate: a.rate, complexity: o.complexity, bitrate: o.bitrate, repeat: 1 };
    const stereo = measureFloor(args);
    const mono2 = monoPair ? measureFloor({ ...args, layout: 'mono2' }) : null;
    out[k] = { cpuUsPerCallSecond: round(stereo.cpuUsPerCallSecond, 1), monoPairUsPerCallSecond: mono2 ? round(mono2.cpuUsPerCallSecond, 1) : null, seconds: stereo.seconds, talkFraction: a.talk.map((x) => round(x, 2)) };
  }
  return out;
}

/** The floor of one run: the mean of before and after, with both kept. */
function runFloor(before, after) {
  if (!before) return null;
  const out = {};
  for (const k of Object.keys(before)) {
    const b = before[k];
    const a = after?.[k] ?? b;
    out[k] = {
      cpuUsPerCallSecond: round((b.cpuUsPerCallSecond + a.cpuUsPerCallSecond) / 2, 1),
      before: b.cpuUsPerCallSecond, after: a.cpuUsPerCallSecond,
      // The engine's layout (two mono streams) is measured before the engine only.
      monoPairUsPerCallSecond: b.monoPairUsPerCallSecond,
      seconds: b.seconds, talkFraction: b.talkFraction,
    };
  }
  return out;
}

function withRatios(p, floor, indexPut) {
  const f = floor?.[p.audio];
  if (floor?.continuous && p.cpuUsPerCallSecond) p.vsFloor = round(p.cpuUsPerCallSecond / floor.continuous.cpuUsPerCallSecond, 2);
  if (f && p.cpuUsPerCallSecond) {
    p.vsFloorSameAudio = round(p.cpuUsPerCallSecond / f.cpuUsPerCallSecond, 2);
    p.vsFloorBefore = round(p.cpuUsPerCallSecond / f.before, 2);
    p.vsFloorAfter = round(p.cpuUsPerCallSecond / f.after, 2);
    p.vsMonoPairFloor = round(p.cpuUsPerCallSecond / f.monoPairUsPerCallSecond, 2);
  }
  if (p.stages && indexPut && p.recordedCallSeconds > 0) {
    // One index write per recorded call, measured apart: part of mainRest and otherThreads.
    p.stages.indexUsPerCallSecond = round((indexPut.cpuUsPerPut * p.recorded) / p.recordedCallSeconds, 1);
  }
}

const stat = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: round(median(v), 2), min: Math.min(...v), max: Math.max(...v), n: v.length };
};

/** Median and range over the runs, per audio kind (runs without the stage clock). */
function summarise(runs, kinds) {
  const out = {};
  for (const k of kinds) {
    const plain = runs.map((r) => r.engine.plain?.phases.find((p) => p.audio === k)).filter(Boolean);
    const timed = runs.map((r) => r.engine.stages?.phases.find((p) => p.audio === k)).filter(Boolean);
    if (plain.length === 0) continue;
    const floors = runs.map((r) => r.floor?.[k]).filter(Boolean);
    const o = {
      runs: plain.length,
      cpuUsPerCallSecond: stat(plain.map((p) => p.cpuUsPerCallSecond)),
      vsFloorSameAudio: stat(plain.map((p) => p.vsFloorSameAudio)),
      vsFloorBefore: stat(plain.map((p) => p.vsFloorBefore)),
      vsFloorAfter: stat(plain.map((p) => p.vsFloorAfter)),
      vsMonoPairFloor: stat(plain.map((p) => p.vsMonoPairFloor)),
      vsFloor: stat(plain.map((p) => p.vsFloor)),
      floorBefore: stat(floors.map((f) => f.before)),
      floorAfter: stat(floors.map((f) => f.after)),
      monoPairFloor: stat(floors.map((f) => f.monoPairUsPerCallSecond)),
      lossPct: stat(plain.map((p) => p.lossPct)),
    };
    const profiled = plain.filter((p) => p.perf && !p.perf.error);
    if (profiled.length > 0) {
      o.perf = {
        runs: profiled.length,
        cells: Object.fromEntries(PERF_THREADS.map(([t]) => [t, Object.fromEntries(PERF_OBJECTS.map(([k]) => [k, stat(profiled.map((p) => p.perf.cells[t][k]))]))])),
        threads: Object.fromEntries(PERF_THREADS.map(([t]) => [t, stat(profiled.map((p) => p.perf.threads[t]))])),
        objects: Object.fromEntries(PERF_OBJECTS.map(([k]) => [k, stat(profiled.map((p) => p.perf.objects[k]))])),
        steadyUsPerCallSecond: stat(profiled.map((p) => p.capture?.cpuUsPerCallSecond)),
      };
    }
    const against = runs.map((r) => r.engine.against?.phases.find((p) => p.audio === k)).filter(Boolean);
    if (against.length > 0) {
      o.againstUsPerCallSecond = stat(against.map((p) => p.cpuUsPerCallSecond));
      o.againstVsFloorSameAudio = stat(against.map((p) => p.vsFloorSameAudio));
      // This build's CPU over the other build's, run by run (each pair in one window).
      o.vsAgainst = stat(runs.map((r) => {
        const a = r.engine.plain?.phases.find((p) => p.audio === k);
        const b = r.engine.against?.phases.find((p) => p.audio === k);
        return a && b && b.cpuUsPerCallSecond ? round(a.cpuUsPerCallSecond / b.cpuUsPerCallSecond, 3) : null;
      }));
    }
    if (timed.length > 0) {
      o.instrumentedUsPerCallSecond = stat(timed.map((p) => p.cpuUsPerCallSecond));
      // The stage clock's own cost: instrumented ÷ uninstrumented total, run by run.
      o.stageClockOverheadPct = stat(runs.map((r) => {
        const a = r.engine.stages?.phases.find((p) => p.audio === k);
        const b = r.engine.plain?.phases.find((p) => p.audio === k);
        return a && b && b.cpuUsPerCallSecond ? round(100 * (a.cpuUsPerCallSecond / b.cpuUsPerCallSecond - 1), 1) : null;
      }));
      o.stages = Object.fromEntries(STAGE_ROWS.map(([key]) => [key, stat(timed.map((p) => p.stages?.usPerCallSecond[key]))]));
      o.stages.index = stat(timed.map((p) => p.stages?.indexUsPerCallSecond));
    }
    out[k] = o;
  }
  return out;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.chaos > 0) return chaosMain(o);
  const kinds = o.kinds;
  const audio = Object.fromEntries(kinds.map((k) => [k, prepareAudio(o.codec, k)]));
  const res = { date: new Date().toISOString(), machine: machine(), options: o, phases: [], floor: null, baseline: null, findMax: null, runs: [] };

  const maxCalls = o.findMax ? Math.max(o.maxLevel, o.calls) : o.calls;
  if (maxCalls > 0) {
    const indexPut = o.stages ? await measurePutCost(REPO) : null;
    if (indexPut) res.indexPut = indexPut;
    for (let r = 0; r < o.repeat; r++) {
      const run = { repetition: r + 1, engine: {} };
      const snap = systemSnapshot();
      // The floor right before and right after the engine, so a box that got busier (or
      // quieter) during the run shows as two floors that differ.
      const before = o.floor ? measureFloors(o, kinds, audio) : null;
      // With --stages the same phases run twice, once with the stage clock and once without,
      // in alternating order, so its overhead is measured in the same window.
      // With --against DIR, this build and DIR's (built) alternate the same way.
      const other = o.stages ? 'stages' : o.against ? 'against' : null;
      const variants = other ? (r % 2 === 0 ? [other, 'plain'] : ['plain', other]) : ['plain'];
      for (const v of variants) {
        console.error(`run ${r + 1}/${o.repeat}: ${v === 'stages' ? `daemon with the stage clock (1 in ${o.stages})` : v === 'against' ? `daemon of ${o.against}` : 'daemon'}`);
        run.engine[v] = await runDaemonPhases(o, kinds, audio, maxCalls, v === 'stages' ? { TALLENNE_STAGE_CLOCK: String(o.stages) } : {}, v === 'against' ? o.against : undefined);
      }
      const after = o.floor ? measureFloors(o, kinds, audio, false) : null;
      run.floor = runFloor(before, after);
      run.system = othersBetween(snap, systemSnapshot());
      for (const v of Object.values(run.engine)) for (const p of v.phases) withRatios(p, run.floor, indexPut);
      res.runs.push(run);
    }
    const first = res.runs[0];
    res.phases = first.engine.plain.phases;
    res.findMax = first.engine.plain.findMax;
    res.floor = first.floor;
    res.daemonErrors = res.runs.flatMap((r) => Object.values(r.engine).flatMap((v) => v.daemonErrors)).slice(0, 20);
  } else if (o.floor) {
    res.floor = runFloor(measureFloors(o, kinds, audio), null);
  }

  if (o.baselineCalls > 0 && !o.findMax && maxCalls > 0) {
    res.baseline = {};
    for (const k of kinds) res.baseline[k] = await runBaseline(o, audio[k], o.baselineCalls, Math.min(o.seconds, 60));
    for (const run of res.runs) for (const v of Object.values(run.engine)) for (const p of v.phases) {
      const b = res.baseline[p.audio];
      if (b && p.cpuUsPerCallSecond) p.vsFfmpegCpu = round(p.cpuUsPerCallSecond / b.cpuUsPerCallSecond, 2);
      // Memory per call: the capture window's RSS growth per call when measured, else peak growth.
      const perCallKb = p.capture?.rssPerCallKb ?? p.rssPerCallKb;
      if (b && perCallKb !== null) p.vsFfmpegMem = round(Math.max(perCallKb, 1) / 1024 / b.rssPerCallMb, 4);
    }
  }
  if (res.runs.length > 0 && !o.findMax) res.summary = summarise(res.runs, kinds);

  if (o.indexEntries > 0) {
    console.error(`index (${o.indexBackend}): filling ${o.indexEntries} entries`);
    res.index = await measureIndex(REPO, o.indexEntries, o.indexQueries, o.indexBackend, o.indexUrl);
  }
  if (o.storageCompare > 0) {
    console.error(`storage: finalising ${o.storageCompare} recordings into the file system and into S3 (a throwaway Swift)`);
    res.storageCompare = await measureStorageCompare(REPO, o.storageCompare);
  }
  if (o.longSpoolHours > 0) {
    console.error(`long spool: ${o.longSpoolHours} h`);
    res.longSpool = await measureLongSpool(REPO, o.longSpoolHours, o.complexity, o.bitrate);
  }
  const text = report(res);
  console.log(text);
  if (o.out) {
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(res, null, 2) + '\n');
    writeFileSync(o.out.replace(/\.json$/, '') + '.md', '```\n' + text + '\n```\n');
  }
  return res;
}

/** `--chaos N`: the kill-and-recover run of bench/chaos.mjs instead of the capacity phases. */
async function chaosMain(o) {
  const res = { date: new Date().toISOString(), machine: machine(), options: o, chaos: await runChaos(o, prepareAudio(o.codec, o.kinds[0])) };
  const text = chaosReport(res.chaos);
  console.log(text);
  if (o.out) {
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, JSON.stringify(res, null, 2) + '\n');
    writeFileSync(o.out.replace(/\.json$/, '') + '.md', `${text}\n\nMachine: ${res.machine.cores} × ${res.machine.cpu}, ${res.machine.memGb} GB, ${res.machine.kernel}, Node ${res.machine.node}. ${o.note ?? ''}\n`);
  }
  if (res.chaos.violations.total > 0) process.exitCode = 1;
  return res;
}

/** One daemon (with `env`), a warm-up round, then the phases (or the find-max ramp). */
async function runDaemonPhases(o, kinds, audio, maxCalls, env, repo) {
  const out = { phases: [], findMax: null, daemonErrors: [] };
  const daemon = await BenchDaemon.start({
    portMin: 20000, portMax: Math.min(65535, 20000 + 4 * maxCalls + 400), maxCalls: maxCalls + 10,
    complexity: o.complexity, bitrate: o.bitrate, skipSilence: o.skipSilence, workers: o.workers, rtpReceive: o.rtpReceive, env, repo,
  });
  try {
    // Warm-up: JIT, encoder worker, LMDB and the first spool directory entries, not measured.
    await runLoad(daemon, { ...o, drainTimeout: 60 }, audio[kinds[0]], Math.min(o.calls, 5), 2);
    if (o.findMax) {
      const levels = [];
      let captureCeiling = 0;
      let sustainedCeiling = 0;
      const kind = kinds[0];
      let sustaining = true;
      for (const n of FIND_MAX_LEVELS.filter((x) => x <= o.maxLevel)) {
        // While the encoder keeps pace, levels run sustained (calls replaced as they end, for
        // three call lengths); above that, capture alone is ramped with one round of calls.
        // Late: sent more than 20 ms behind schedule; the same 0.01 % bound as for loss.
        let r = await runLoad(daemon, o, audio[kind], n, o.seconds, sustaining ? 3 * o.seconds : 0);
        if (!clean(r) && r.answered === r.offered && r.lossPct < 0.01 && !r.generator.capLimited) {
          // Only the generator was late (the box was busy with something else for a moment):
          // the level is run once more before it counts as not clean.
          console.error(`level ${n}: generator late ${r.generator.latePackets} with no loss; running the level again`);
          const again = await runLoad(daemon, o, audio[kind], n, o.seconds, sustaining ? 3 * o.seconds : 0);
          again.retriedAfterGeneratorLate = r.generator.latePackets;
          r = again;
        }
        r.captureClean = clean(r);
        // The encoder kept pace with capture: the backlog left when the last call ended was
        // gone within one call length.
        r.sustainedClean = sustaining && r.captureClean && r.recorded === r.answered && r.drainAfterLastByeS <= o.seconds;
        if (!r.sustainedClean) sustaining = false;
        levels.push(r);
        console.error(`level ${n}: loss ${round(r.lossPct, 4)} %, generator late ${r.generator.latePackets}, drained ${r.drainAfterLastByeS} s after the last BYE, capture ${r.captureClean ? 'clean' : 'NOT clean'}, sustained ${r.sustainedClean ? 'yes' : 'no'}`);
        if (r.captureClean) captureCeiling = n;
        if (r.sustainedClean) sustainedCeiling = n;
        if (!r.captureClean || (o.stopAtSustained && !r.sustainedClean)) break;
      }
      out.findMax = { audio: kind, seconds: o.seconds, levels, captureCeiling, sustainedCeiling };
    } else {
      for (const k of kinds) {
        const r = await runLoad(daemon, o, audio[k], o.calls, o.seconds, o.sustain);
        // --sustain: the level is sustained when capture is clean, every call is recorded and
        // the backlog at the last hang-up is gone within one call length (as --find-max says).
        if (o.sustain) r.captureClean = clean(r);
        if (o.sustain) r.sustainedClean = r.captureClean && r.recorded === r.answered && r.drainAfterLastByeS <= o.seconds;
        console.error(`${k}: ${r.answered}/${r.offered} answered, ${r.recorded} recorded, loss ${round(r.lossPct, 4)} %${o.sustain ? `, drained ${r.drainAfterLastByeS} s after the last BYE, sustained ${r.sustainedClean ? 'yes' : 'no'}` : ''}`);
        out.phases.push(r);
      }
    }
  } finally {
    await daemon.stop();
    out.daemonErrors = daemon.errors.slice(0, 20);
    daemon.remove();
  }
  return out;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

export { REPO };
