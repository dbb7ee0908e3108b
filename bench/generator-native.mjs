/**
 * `--gen-mode sendmmsg`: the load generator as one small C process (native/rtp-sendmmsg.c)
 * that replays the schedule of the `replay` mode and sends with sendmmsg(2) in batches. It is
 * compiled with the system's C compiler (`cc`) on first use into a temporary folder, removed
 * when the generator closes.
 *
 * NativeSender stands where a generator-worker.mjs thread stands: it takes the same messages
 * (`add`, `stop`, `end`) and answers with the same ones, so Generator drives both alike. Its
 * `thread` message carries the process id (`pid`) instead of a thread id, and its `closed`
 * message the process's own CPU time as getrusage(2) gave it at the end.
 */
import { EventEmitter } from 'node:events';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LATENESS_BUCKETS, LatenessHistogram } from './lateness.mjs';
import { rtpPackets } from './audio.mjs';

const SOURCE = fileURLToPath(new URL('./native/rtp-sendmmsg.c', import.meta.url));

/** Pre-rendered whole RTP packets of each party, laid out as rtp-sendmmsg reads them. */
function partiesFile(parties, pt) {
  const parts = [Buffer.from(new Uint32Array([parties.length]).buffer)];
  for (const p of parties) {
    const { data, at, frames } = rtpPackets(p, pt);
    parts.push(Buffer.from(new Uint32Array([frames]).buffer), Buffer.from(new Uint32Array(at).buffer), data);
  }
  return Buffer.concat(parts);
}

export class NativeSender extends EventEmitter {
  /** `data`: the workerData a generator thread gets (parties, pt, tsStep, lateMs, pps, counters, index). */
  constructor(data) {
    super();
    if (data.sockets !== 'shared') throw new Error('--gen-mode sendmmsg sends from one socket (--gen-sockets shared)');
    this.dir = mkdtempSync(join(tmpdir(), 'tallenne-bench-gen-'));
    const bin = join(this.dir, 'rtp-sendmmsg');
    try {
      execFileSync('cc', ['-O2', '-o', bin, SOURCE, '-lm'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      rmSync(this.dir, { recursive: true, force: true });
      throw new Error(`--gen-mode sendmmsg needs a C compiler (cc): ${String(e.stderr ?? e.message).trim()}`);
    }
    const file = join(this.dir, 'parties.bin');
    writeFileSync(file, partiesFile(data.parties, data.pt));
    this.counts = new Float64Array(data.counters);
    this.index = data.index;
    this.lateness = new LatenessHistogram(new Float64Array(LATENESS_BUCKETS));
    this.cpuSeconds = null;
    this.proc = spawn(bin, [file, String(data.pt), String(data.tsStep), String(data.lateMs), String(data.pps)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.proc.stdin.on('error', () => undefined);
    let rest = '';
    this.proc.stdout.setEncoding('latin1');
    this.proc.stdout.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      for (const line of lines) this.line(line);
    });
    this.proc.once('exit', (code, signal) => {
      rmSync(this.dir, { recursive: true, force: true });
      if (code !== 0 && !this.ending) this.emit('error', new Error(`rtp-sendmmsg ended (${signal ?? code})`));
      this.emit('exit', code);
    });
    queueMicrotask(() => this.emit('message', { type: 'thread', pid: this.proc.pid }));
  }

  line(line) {
    const f = line.split(' ');
    switch (f[0]) {
      case 'c':
        this.counts[2 * this.index] = Number(f[1]);
        this.counts[2 * this.index + 1] = Number(f[2]);
        break;
      case 'added':
        this.emit('message', { type: 'added', id: this.ids.get(Number(f[1])) });
        break;
      case 'stopped': {
        const id = this.ids.get(Number(f[1]));
        this.ids.delete(Number(f[1]));
        this.emit('message', { type: 'stopped', id, sent: Number(f[2]), late: Number(f[3]), skipped: Number(f[4]), maxLateMs: Number(f[5]) });
        break;
      }
      case 'h':
        // 0.1 ms units, rounded up: the unit's upper edge falls in the bucket the exact value did.
        this.lateness.recordMany(Number(f[1]) / 10, Number(f[2]));
        break;
      case 'max':
        this.lateness.maxMs = Number(f[1]);
        break;
      case 'cpu':
        this.cpuSeconds = Number(f[1]);
        break;
      case 'bye':
        this.emit('message', { type: 'closed', lateness: { counts: this.lateness.counts, maxMs: this.lateness.maxMs }, cpuSeconds: this.cpuSeconds });
        break;
      default:
        break;
    }
  }

  /** The generator-worker messages: the bench's leg ids are mapped to numbers for the C side. */
  postMessage(m) {
    this.ids ??= new Map();
    this.nums ??= new Map();
    if (m.type === 'add') {
      if (m.srtp) throw new Error('--gen-mode sendmmsg sends plain RTP (no --srtp)');
      this.last = (this.last ?? 0) + 1;
      const n = this.last;
      this.nums.set(m.id, n);
      this.ids.set(n, m.id);
      const ssrc = (Math.random() * 0x100000000) >>> 0;
      const seq = (Math.random() * 65536) | 0;
      const ts = (Math.random() * 0x100000000) >>> 0;
      this.proc.stdin.write(`add ${n} ${m.port} ${m.party} ${m.startFrame} ${m.at} ${ssrc} ${seq} ${ts}\n`);
    } else if (m.type === 'stop') {
      const n = this.nums.get(m.id);
      this.nums.delete(m.id);
      if (n !== undefined) this.proc.stdin.write(`stop ${n}\n`);
      else queueMicrotask(() => this.emit('message', { type: 'stopped', id: m.id, sent: 0, late: 0, skipped: 0, maxLateMs: 0 }));
    } else if (m.type === 'end') {
      this.ending = true;
      this.proc.stdin.write('end\n');
    }
  }
}
