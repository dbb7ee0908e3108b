/**
 * The load generator: a few worker threads (generator-worker.mjs), each sending the RTP of
 * the legs it holds at real-time pace. Shared by the capacity runs and the chaos mode.
 */
import { Worker } from 'node:worker_threads';
import { procCpuSeconds, threadCpuSeconds } from './daemon.mjs';
import { NativeSender } from './generator-native.mjs';
import { LatenessHistogram } from './lateness.mjs';

/** A packet sent more than one packet interval after its schedule counts as late. */
export const LATE_MS = 20;
/** Every leg sends one packet per 20 ms: 50 per second. */
const PACKET_MS = 20;

/** How the generator sends: `--gen-mode`, `--gen-sockets`. */
export const GEN_MODES = ['legs', 'replay', 'sendmmsg'];
export const GEN_SOCKETS = ['shared', 'per-leg'];

/**
 * The load generator: a few worker threads, each sending the RTP of the legs it holds.
 *
 * `opts`: { mode: 'legs' | 'replay', sockets: 'shared' | 'per-leg' (replay only), pps: total
 * packets per second over all threads, 0 for no cap }. See generator-worker.mjs.
 */
export class Generator {
  constructor(threads, audio, codec, opts = {}) {
    this.mode = opts.mode ?? 'legs';
    this.sockets = this.mode === 'legs' ? 'per-leg' : (opts.sockets ?? 'shared');
    this.pps = opts.pps ?? 0;
    this.threads = threads;
    this.workers = [];
    this.waiting = new Map();
    this.tids = [];
    /** The C sender's process id per slot (`sendmmsg`), where a thread has a tid. */
    this.pids = [];
    let told = 0;
    let allTold;
    /** Resolves once every thread has said its id (its CPU can be read from then on). */
    this.ready = new Promise((r) => (allTold = r));
    this.closedCpu = 0;
    this.lateness = new LatenessHistogram();
    this.totals = { sent: 0, late: 0, skipped: 0, maxLateMs: 0 };
    // [sent, skipped] per thread, written by the threads as they go.
    this.counters = new Float64Array(new SharedArrayBuffer(16 * threads));
    for (let i = 0; i < threads; i++) {
      const workerData = {
        parties: audio.parties, pt: codec.pt, tsStep: codec.tsStep, lateMs: LATE_MS, periodMs: PACKET_MS,
        mode: this.mode, sockets: this.sockets, pps: this.pps / threads, counters: this.counters.buffer, index: i,
      };
      const w = this.mode === 'sendmmsg' ? new NativeSender(workerData) : new Worker(new URL('./generator-worker.mjs', import.meta.url), { workerData });
      w.on('message', (m) => {
        if (m.type === 'thread') {
          this.tids[i] = m.tid;
          this.pids[i] = m.pid;
          if (++told === threads) allTold();
        }
        else if (m.type === 'stopped') {
          this.totals.sent += m.sent;
          this.totals.late += m.late;
          this.totals.skipped += m.skipped;
          this.totals.maxLateMs = Math.max(this.totals.maxLateMs, m.maxLateMs);
        } else if (m.type === 'closed') {
          this.lateness.merge(m.lateness);
          this.closedCpu += m.cpuSeconds ?? 0;
        }
        const r = this.waiting.get(`${m.type}:${m.id}`);
        if (r) {
          this.waiting.delete(`${m.type}:${m.id}`);
          r(m);
        }
      });
      this.workers.push(w);
    }
    this.next = 0;
    this.home = new Map();
  }

  /** The generator the bench's options ask for (`--gen-threads`, `--gen-mode`, `--gen-sockets`, `--gen-pps`). */
  static fromOptions(o, audio, codec) {
    return new Generator(o.genThreads, audio, codec, { mode: o.genMode, sockets: o.genSockets, pps: o.genPps });
  }

  /** `srtp`: { suite, keySalt } to send the leg as SRTP (the generator thread protects each packet). */
  add(id, port, party, startFrame, at, srtp = null) {
    const w = this.workers[this.next++ % this.workers.length];
    this.home.set(id, w);
    const p = new Promise((r) => this.waiting.set(`added:${id}`, r));
    w.postMessage({ type: 'add', id, port, party, startFrame, at, srtp });
    return p;
  }

  stop(id) {
    const w = this.home.get(id);
    if (!w) return Promise.resolve(null); // stopped already (the chaos mode stops all at a kill)
    this.home.delete(id);
    const p = new Promise((r) => this.waiting.set(`stopped:${id}`, r));
    w.postMessage({ type: 'stop', id });
    return p;
  }

  /** Stops every leg still sending (the chaos mode, when the daemon it sends to was killed). */
  stopAll() {
    return Promise.all([...this.home.keys()].map((id) => this.stop(id)));
  }

  /** Packets sent and skipped (over the cap) so far, read from the threads' counters. */
  packets() {
    let sent = 0;
    let skipped = 0;
    for (let i = 0; i < this.threads; i++) {
      sent += this.counters[2 * i];
      skipped += this.counters[2 * i + 1];
    }
    return { sent, skipped };
  }

  /** CPU seconds of the generator threads so far (from /proc; null until every thread said its id). */
  cpuSeconds() {
    let s = 0;
    for (let i = 0; i < this.threads; i++) {
      if (this.tids[i] === undefined && this.pids[i] === undefined) return null;
      const c = this.pids[i] !== undefined ? procCpuSeconds(this.pids[i]) : threadCpuSeconds(process.pid, this.tids[i]);
      if (c === null) return null;
      s += c;
    }
    return s;
  }

  /**
   * What the generator did, for the results (after close): its mode, lateness (late packets,
   * p50 / p99 / p99.9 / max and the coarse histogram), and what the cap held back — packets
   * the cap skipped and the packet rate per leg that left, against the nominal 50.
   */
  summary() {
    const t = this.totals;
    const nominal = t.sent + t.skipped;
    const q = (x) => this.lateness.quantile(x);
    return {
      mode: this.mode, threads: this.threads, sockets: this.sockets, ppsCap: this.pps || null,
      latePackets: t.late, latePct: t.sent > 0 ? (100 * t.late) / t.sent : 0, maxLateMs: Math.round(t.maxLateMs * 10) / 10,
      lateMs: { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: Math.round(this.lateness.maxMs * 10) / 10 },
      lateHistMs: this.lateness.coarse(),
      capSkipped: t.skipped, capLimited: t.skipped > 0,
      legPps: nominal > 0 ? Math.round((1000 / PACKET_MS) * (t.sent / nominal) * 10) / 10 : null,
    };
  }

  /** Ends every thread; their lateness histograms and own CPU (`closedCpu`) arrive before it resolves. */
  async close() {
    for (const w of this.workers) w.postMessage({ type: 'end' });
    await Promise.all(this.workers.map((w) => new Promise((r) => w.once('exit', r))));
  }
}
