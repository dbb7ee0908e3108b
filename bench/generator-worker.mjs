/**
 * One load-generator thread: sends the RTP of the legs it was given at real-time pace.
 *
 * Every leg has its own connected UDP socket (no address lookup per send) and its own
 * schedule: packet n is due at start + 20n ms. A tight loop wakes every millisecond or two,
 * sends every packet that is due (from a ring of prebuilt buffers: the payload comes from
 * the shared, pre-encoded table; only sequence number and timestamp are written), and
 * records how late each send was against its schedule. Lateness is the generator's own
 * bottleneck; reported separately so it is not mistaken for loss in the daemon.
 *
 * With `srtp` ({ suite, keySalt }) a leg's packets are protected (src/rtp/srtp.ts protectRtp,
 * a new buffer per packet) before they are sent: that cost lands on the generator thread.
 *
 * Messages in:  { type: 'add', id, port, party, startFrame, at, srtp? } | { type: 'stop', id } | { type: 'end' }
 * Messages out: { type: 'added', id } | { type: 'stopped', id, sent, late, maxLateMs, lateHist }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { SrtpSession } from '../dist/rtp/srtp.js';
import { SRTP_SUITES } from '../dist/rtp/srtp-suites.js';

const { parties, pt, tsStep, lateMs } = workerData;
const tables = parties.map((p) => ({ data: Buffer.from(p.data), offsets: new Int32Array(p.offsets), frames: p.frames }));
const RING = 4;
/** Lateness histogram buckets (ms upper bounds); the last bucket is everything above. */
const LATE_BUCKETS = [1, 2, 5, 10, 20, 40, 80, 160];

const legs = new Map();
const active = [];

function histIndex(ms) {
  for (let i = 0; i < LATE_BUCKETS.length; i++) if (ms <= LATE_BUCKETS[i]) return i;
  return LATE_BUCKETS.length;
}

function addLeg(m) {
  const sock = createSocket('udp4');
  sock.on('error', () => undefined);
  const ssrc = (Math.random() * 0x100000000) >>> 0;
  const leg = {
    id: m.id, sock, table: tables[m.party], frame: m.startFrame % tables[m.party].frames,
    seq: (Math.random() * 65536) | 0, ts: (Math.random() * 0x100000000) >>> 0,
    start: m.at - performance.timeOrigin, n: 0, sent: 0, late: 0, maxLate: 0,
    hist: new Array(LATE_BUCKETS.length + 1).fill(0), ring: [], ringAt: 0, ready: false, stopped: false,
  };
  // Fixed-size payloads (G.711, G.722) get buffers of the exact packet size, so a send passes
  // the buffer as is; Node otherwise makes a new view per send for an offset and length.
  const t = tables[m.party];
  const fixed = t.offsets[1] - t.offsets[0];
  let same = true;
  for (let f = 1; f < t.frames && same; f++) same = t.offsets[f + 1] - t.offsets[f] === fixed;
  leg.fixed = same;
  for (let i = 0; i < RING; i++) {
    const b = Buffer.alloc(12 + (same ? fixed : 1500));
    b[0] = 0x80;
    b[1] = pt;
    b.writeUInt32BE(ssrc, 8);
    leg.ring.push(b);
  }
  if (m.srtp) {
    const s = SRTP_SUITES[m.srtp.suite];
    const raw = Buffer.from(m.srtp.keySalt, 'base64');
    leg.srtp = new SrtpSession({ suite: s.name, keys: [{ key: raw.subarray(0, s.keyBytes), salt: raw.subarray(s.keyBytes) }] });
  }
  legs.set(m.id, leg);
  sock.bind(0, '127.0.0.1', () => {
    sock.connect(m.port, '127.0.0.1', () => {
      leg.ready = true;
      if (!leg.stopped) active.push(leg);
      parentPort.postMessage({ type: 'added', id: m.id });
    });
  });
}

function stopLeg(id) {
  const leg = legs.get(id);
  if (!leg) return;
  leg.stopped = true;
  const i = active.indexOf(leg);
  if (i >= 0) active.splice(i, 1);
  legs.delete(id);
  try {
    leg.sock.close();
  } catch {
    // already closed
  }
  parentPort.postMessage({ type: 'stopped', id, sent: leg.sent, late: leg.late, maxLateMs: leg.maxLate, lateHist: leg.hist });
}

function sendDue(leg, now) {
  while (leg.start + leg.n * 20 <= now) {
    const due = leg.start + leg.n * 20;
    const t = leg.table;
    const a = t.offsets[leg.frame];
    const len = t.offsets[leg.frame + 1] - a;
    const buf = leg.ring[leg.ringAt];
    leg.ringAt = (leg.ringAt + 1) % RING;
    buf.writeUInt16BE(leg.seq, 2);
    buf.writeUInt32BE(leg.ts, 4);
    buf[1] = leg.n === 0 ? pt | 0x80 : pt;
    t.data.copy(buf, 12, a, a + len);
    if (leg.srtp) leg.sock.send(leg.srtp.protectRtp(leg.fixed ? buf : buf.subarray(0, 12 + len)));
    else if (leg.fixed) leg.sock.send(buf);
    else leg.sock.send(buf, 0, 12 + len);
    leg.seq = (leg.seq + 1) & 0xffff;
    leg.ts = (leg.ts + tsStep) >>> 0;
    leg.frame = leg.frame + 1 >= t.frames ? 0 : leg.frame + 1;
    leg.n++;
    leg.sent++;
    const lag = now - due;
    leg.hist[histIndex(lag)]++;
    if (lag > lateMs) leg.late++;
    if (lag > leg.maxLate) leg.maxLate = lag;
  }
}

let running = true;
function tick() {
  if (!running) return;
  const now = performance.now();
  for (let i = 0; i < active.length; i++) sendDue(active[i], now);
  setTimeout(tick, 1);
}
tick();

parentPort.on('message', (m) => {
  if (m.type === 'add') addLeg(m);
  else if (m.type === 'stop') stopLeg(m.id);
  else if (m.type === 'end') {
    running = false;
    for (const id of [...legs.keys()]) stopLeg(id);
    parentPort.close();
  }
});
