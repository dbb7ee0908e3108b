/**
 * One load-generator thread: sends the RTP of the legs it was given at real-time pace.
 *
 * Packets are pre-rendered: for each party, every frame of the clip as a whole RTP packet
 * (version, payload type, payload). A send copies one into a send buffer (a ring of the
 * thread's, reused; only after RING further sends is a buffer written again) and writes the
 * leg's sequence number, timestamp, SSRC and marker. Packet n of a leg is due at its start
 * + 20n ms. Two ways of getting them out (`mode`):
 *
 * - `legs`: every leg has its own connected UDP socket (no address per send); a loop wakes
 *   every millisecond, looks at every leg and sends whatever is due.
 * - `replay`: a schedule replayed in batches. A leg's packets fall on whole milliseconds, so
 *   its place in the 20 ms cycle is one of 20 slots, fixed when it is added. Each tick visits
 *   only the slots that came due since the last one and sends their packets back to back
 *   (Node has no sendmmsg: a batch is many sends in one turn of the loop), by default from one
 *   unconnected socket for all legs (`sockets: 'shared'`, with an address lookup that answers
 *   at once instead of a deferred DNS callback per send), or per-leg sockets as in `legs`.
 *
 * Lateness: each packet's send time against its schedule, read from the clock just before
 * the send, into the thread's histogram (lateness.mjs); over 20 ms it is a *late packet*.
 * Lateness is the generator's own bottleneck, reported apart from loss in the daemon.
 *
 * Rate cap (`pps`, this thread's share of `--gen-pps`): a token bucket. A due packet without a
 * token is not sent (its sequence number is used up, as a packet lost before the recorder),
 * counted as `skipped`; legs are visited from a rotating start, so the cap thins every leg
 * alike. Skips are the generator's limit, never the daemon's loss.
 *
 * With `srtp` ({ suite, keySalt }) a leg's packets are protected (src/rtp/srtp.ts protectRtp,
 * a new buffer per packet) before they are sent: that cost lands on the generator thread.
 *
 * `counters` (a SharedArrayBuffer: Float64 [sent, skipped] per thread) lets the bench read the
 * packets sent so far at any moment, for CPU per packet over a window.
 *
 * Messages in:  { type: 'add', id, port, party, startFrame, at, srtp? } | { type: 'stop', id } | { type: 'end' }
 * Messages out: { type: 'thread', tid } | { type: 'added', id } | { type: 'stopped', id, sent, late, skipped, maxLateMs }
 *               | { type: 'closed', lateness: { counts, maxMs }, cpuSeconds }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSocket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIPv4 } from 'node:net';
import { readFileSync, readlinkSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { SrtpSession } from '../dist/rtp/srtp.js';
import { SRTP_SUITES } from '../dist/rtp/srtp-suites.js';
import { LatenessHistogram } from './lateness.mjs';
import { rtpPackets } from './audio.mjs';

const { parties, pt, tsStep, lateMs, periodMs: PERIOD_MS, mode, sockets, pps, counters, index } = workerData;
const HOST = '127.0.0.1';
/** Send buffers of the thread, used in turn. */
const RING = 1024;
const CLOCK_TICKS_PER_SECOND = 100;

// The pre-rendered packets: per party one buffer of whole RTP packets, one per frame.
const packets = parties.map((p) => rtpPackets(p, pt));
// Fixed-size packets (G.711, G.722) get send buffers of the exact size, so a send passes the
// buffer as is; Node otherwise makes a new view per send for an offset and length.
let fixed = packets[0].at[1] - packets[0].at[0];
let maxLen = 0;
for (const t of packets) {
  for (let f = 0; f < t.frames; f++) {
    const len = t.at[f + 1] - t.at[f];
    if (len !== fixed) fixed = 0;
    if (len > maxLen) maxLen = len;
  }
}
const ring = Array.from({ length: RING }, () => Buffer.alloc(fixed || maxLen));
let ringAt = 0;

const counts = new Float64Array(counters);
const lateness = new LatenessHistogram();
/**
 * Tokens saved up while the demand is under the cap, at most this many ms' worth: a loop that
 * stalled (a busy box) catches up without skips when the cap is above the demand; above the
 * demand the bucket stays empty and the cap paces every packet.
 */
const CAP_BURST_MS = 250;
const cap = pps > 0 ? { perMs: pps / 1000, burst: Math.max(1, (pps * CAP_BURST_MS) / 1000), tokens: Math.max(1, pps / 1000), at: performance.now() } : null;

/** One unconnected socket for every leg (`replay` with shared sockets). */
const shared = mode === 'replay' && sockets === 'shared'
  ? createSocket({ type: 'udp4', lookup: (address, family, cb) => (isIPv4(address) ? cb(null, address, 4) : dnsLookup(address, family, cb)) })
  : null;
let sharedReady = Promise.resolve();
if (shared) {
  shared.on('error', () => undefined);
  sharedReady = new Promise((r) => shared.bind(0, HOST, r));
}

const legs = new Map();
/** `legs`: every sending leg. */
const active = [];
/** `replay`: the legs of each millisecond of the cycle, and the last millisecond visited. */
const slots = Array.from({ length: PERIOD_MS }, () => []);
let visited = -1;
let rotate = 0;

function threadCpuSeconds() {
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

async function addLeg(m) {
  const leg = {
    id: m.id, port: m.port, sock: null, party: packets[m.party], frame: m.startFrame % packets[m.party].frames,
    ssrc: (Math.random() * 0x100000000) >>> 0, seq: (Math.random() * 65536) | 0, ts: (Math.random() * 0x100000000) >>> 0,
    // `replay` puts every packet on a whole millisecond: the schedule's slots.
    due: mode === 'replay' ? Math.ceil(m.at - performance.timeOrigin) : m.at - performance.timeOrigin,
    n: 0, sent: 0, late: 0, skipped: 0, maxLate: 0, srtp: null, stopped: false, slot: -1, slotAt: -1,
  };
  if (m.srtp) {
    const s = SRTP_SUITES[m.srtp.suite];
    const raw = Buffer.from(m.srtp.keySalt, 'base64');
    leg.srtp = new SrtpSession({ suite: s.name, keys: [{ key: raw.subarray(0, s.keyBytes), salt: raw.subarray(s.keyBytes) }] });
  }
  legs.set(m.id, leg);
  if (shared) {
    await sharedReady;
  } else {
    leg.sock = createSocket('udp4');
    leg.sock.on('error', () => undefined);
    await new Promise((r) => leg.sock.bind(0, HOST, r));
    await new Promise((r) => leg.sock.connect(m.port, HOST, r));
  }
  if (!leg.stopped) {
    if (mode === 'replay') {
      // A leg added after its first slot went by this cycle is caught up at the next tick.
      leg.slot = ((leg.due % PERIOD_MS) + PERIOD_MS) % PERIOD_MS;
      leg.slotAt = slots[leg.slot].length;
      slots[leg.slot].push(leg);
      if (leg.due <= visited) sendDue(leg);
    } else {
      active.push(leg);
    }
  }
  parentPort.postMessage({ type: 'added', id: m.id });
}

function stopLeg(id) {
  const leg = legs.get(id);
  if (!leg) return;
  leg.stopped = true;
  legs.delete(id);
  if (leg.slot >= 0) {
    const s = slots[leg.slot];
    const last = s.pop();
    if (last !== leg) {
      s[leg.slotAt] = last;
      last.slotAt = leg.slotAt;
    }
  } else {
    const i = active.indexOf(leg);
    if (i >= 0) active.splice(i, 1);
  }
  if (leg.sock) {
    try {
      leg.sock.close();
    } catch {
      // already closed
    }
  }
  parentPort.postMessage({ type: 'stopped', id, sent: leg.sent, late: leg.late, skipped: leg.skipped, maxLateMs: leg.maxLate });
}

/** Whether the cap lets one more packet go now. */
function take(now) {
  cap.tokens = Math.min(cap.burst, cap.tokens + (now - cap.at) * cap.perMs);
  cap.at = now;
  if (cap.tokens < 1) return false;
  cap.tokens--;
  return true;
}

/** Sends (or, over the cap, skips) every packet of `leg` that is due. */
function sendDue(leg) {
  let now = performance.now();
  while (leg.due <= now) {
    if (cap === null || take(now)) {
      const t = leg.party;
      const a = t.at[leg.frame];
      const len = t.at[leg.frame + 1] - a;
      const buf = ring[ringAt];
      ringAt = ringAt + 1 === RING ? 0 : ringAt + 1;
      t.data.copy(buf, 0, a, a + len);
      if (leg.n === 0) buf[1] = pt | 0x80;
      buf.writeUInt16BE(leg.seq, 2);
      buf.writeUInt32BE(leg.ts, 4);
      buf.writeUInt32BE(leg.ssrc, 8);
      const lag = now - leg.due;
      const out = leg.srtp ? leg.srtp.protectRtp(fixed ? buf : buf.subarray(0, len)) : buf;
      const whole = fixed || leg.srtp;
      if (shared) {
        if (whole) shared.send(out, leg.port, HOST);
        else shared.send(out, 0, len, leg.port, HOST);
      } else if (whole) leg.sock.send(out);
      else leg.sock.send(out, 0, len);
      lateness.record(lag);
      leg.sent++;
      counts[2 * index]++;
      if (lag > lateMs) leg.late++;
      if (lag > leg.maxLate) leg.maxLate = lag;
    } else {
      leg.skipped++;
      counts[2 * index + 1]++;
    }
    leg.seq = (leg.seq + 1) & 0xffff;
    leg.ts = (leg.ts + tsStep) >>> 0;
    leg.frame = leg.frame + 1 >= leg.party.frames ? 0 : leg.frame + 1;
    leg.n++;
    leg.due += PERIOD_MS;
    now = performance.now();
  }
}

let running = true;
function tick() {
  if (!running) return;
  if (mode === 'replay') {
    // Every slot from the one after the last visited up to now; after a stall of a cycle or
    // more, each slot once (a leg sends all its due packets in one visit).
    const upTo = Math.floor(performance.now());
    const from = Math.max(visited + 1, upTo - PERIOD_MS + 1);
    for (let ms = from; ms <= upTo; ms++) {
      const s = slots[ms % PERIOD_MS];
      const n = s.length;
      if (n === 0) continue;
      // A rotating start, so that under the cap no leg is always last in its slot.
      const start = rotate++ % n;
      for (let i = 0; i < n; i++) sendDue(s[(start + i) % n]);
    }
    visited = upTo;
  } else {
    const n = active.length;
    const start = n > 0 ? rotate++ % n : 0;
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const leg = active[(start + i) % n];
      if (leg.due <= now) sendDue(leg);
    }
  }
  setTimeout(tick, 1);
}

parentPort.postMessage({ type: 'thread', tid: Number(readlinkSync('/proc/thread-self').split('/').pop()) });
tick();

parentPort.on('message', (m) => {
  if (m.type === 'add') addLeg(m);
  else if (m.type === 'stop') stopLeg(m.id);
  else if (m.type === 'end') {
    running = false;
    for (const id of [...legs.keys()]) stopLeg(id);
    if (shared) shared.close();
    parentPort.postMessage({ type: 'closed', lateness: { counts: lateness.counts, maxMs: lateness.maxMs }, cpuSeconds: threadCpuSeconds() });
    parentPort.close();
  }
});
