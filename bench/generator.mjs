/**
 * The load generator: a few worker threads (generator-worker.mjs), each sending the RTP of
 * the legs it holds at real-time pace. Shared by the capacity runs and the chaos mode.
 */
import { Worker } from 'node:worker_threads';

/** A packet sent more than one packet interval after its schedule counts as late. */
export const LATE_MS = 20;

/** The load generator: a few worker threads, each sending the RTP of the legs it holds. */
export class Generator {
  constructor(threads, audio, codec) {
    this.workers = [];
    this.waiting = new Map();
    this.totals = { sent: 0, late: 0, maxLateMs: 0, lateHist: null };
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL('./generator-worker.mjs', import.meta.url), {
        workerData: { parties: audio.parties, pt: codec.pt, tsStep: codec.tsStep, lateMs: LATE_MS },
      });
      w.on('message', (m) => {
        if (m.type === 'stopped') {
          this.totals.sent += m.sent;
          this.totals.late += m.late;
          this.totals.maxLateMs = Math.max(this.totals.maxLateMs, m.maxLateMs);
          if (!this.totals.lateHist) this.totals.lateHist = m.lateHist.map(() => 0);
          m.lateHist.forEach((n, k) => (this.totals.lateHist[k] += n));
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

  async close() {
    for (const w of this.workers) w.postMessage({ type: 'end' });
    await Promise.all(this.workers.map((w) => new Promise((r) => w.once('exit', r))));
  }
}
