/**
 * Waveform peaks of a recording: per channel, the minimum and maximum sample of every 20 ms,
 * so the page draws both channels without decoding audio in the browser. Computed from the
 * stored audio with the system ffmpeg on first request (on a temporary local copy, removed
 * after), then kept in memory (bounded) keyed by the recording's id and size; nothing derived
 * from the audio is kept on disk, so an erased or purged recording leaves no peaks behind.
 *
 * Values are in -1..1, rounded to two decimals. Channel 0 (left) is the customer, channel 1
 * (right) the agent (the encoder's layout).
 */
import { spawn } from 'node:child_process';
import { opusToPcmArgs } from '../storage/opus-decode.js';

export const PEAK_INTERVAL_MS = 20;
/** Decoding rate: enough to find peaks per 20 ms, an eighth of the work of 48 kHz. */
const DECODE_RATE = 8000;
const SAMPLES_PER_INTERVAL = (DECODE_RATE * PEAK_INTERVAL_MS) / 1000;
/** Memory the cache may hold (JSON text, in characters). */
const CACHE_BUDGET_CHARS = 64 * 1024 * 1024;

export interface PeakChannel {
  role: 'customer' | 'agent';
  min: number[];
  max: number[];
}

export interface Peaks {
  intervalMs: number;
  durationMs: number;
  channels: PeakChannel[];
}

const ROLES: readonly PeakChannel['role'][] = ['customer', 'agent'];

/** Folds interleaved s16le PCM of `channels` channels into peaks. Pure. */
export class PeakAccumulator {
  private readonly min: number[][];
  private readonly max: number[][];
  private curMin: number[];
  private curMax: number[];
  private inInterval = 0;
  private frames = 0;
  private carry: Buffer = Buffer.alloc(0);

  constructor(private readonly channels: number) {
    this.min = Array.from({ length: channels }, () => []);
    this.max = Array.from({ length: channels }, () => []);
    this.curMin = new Array<number>(channels).fill(0);
    this.curMax = new Array<number>(channels).fill(0);
  }

  push(chunk: Buffer): void {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    const frameBytes = 2 * this.channels;
    const whole = buf.length - (buf.length % frameBytes);
    for (let off = 0; off < whole; off += frameBytes) {
      for (let c = 0; c < this.channels; c++) {
        const v = buf.readInt16LE(off + 2 * c);
        if (v < this.curMin[c]!) this.curMin[c] = v;
        if (v > this.curMax[c]!) this.curMax[c] = v;
      }
      this.frames++;
      if (++this.inInterval === SAMPLES_PER_INTERVAL) this.flush();
    }
    this.carry = buf.subarray(whole);
  }

  private flush(): void {
    for (let c = 0; c < this.channels; c++) {
      this.min[c]!.push(round(this.curMin[c]! / 32768));
      this.max[c]!.push(round(this.curMax[c]! / 32767));
    }
    this.curMin.fill(0);
    this.curMax.fill(0);
    this.inInterval = 0;
  }

  finish(): Peaks {
    if (this.inInterval > 0) this.flush();
    return {
      intervalMs: PEAK_INTERVAL_MS,
      durationMs: Math.round((this.frames * 1000) / DECODE_RATE),
      channels: this.min.map((min, c) => ({ role: ROLES[c] ?? 'agent', min, max: this.max[c]! })),
    };
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Decodes an Ogg Opus file (a local copy, see src/storage/local-copy.ts) with ffmpeg (libopus) into peaks (two channels). */
export function computePeaks(audio: string): Promise<Peaks> {
  return new Promise((resolve, reject) => {
    const dec = spawn('ffmpeg', opusToPcmArgs(DECODE_RATE, 2, audio), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acc = new PeakAccumulator(2);
    let stderr = '';
    dec.stdout.on('data', (d: Buffer) => acc.push(d));
    dec.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    dec.on('error', reject);
    dec.on('close', (code) => (code === 0 ? resolve(acc.finish()) : reject(new Error(`ffmpeg could not decode the recording: ${stderr.trim() || `exit ${code}`}`))));
  });
}

/**
 * Peaks by recording, as JSON text ready to send. Concurrent first requests for the same
 * recording share one decode.
 */
export class PeakCache {
  private readonly done = new Map<string, string>();
  private readonly pending = new Map<string, Promise<string>>();
  private chars = 0;

  constructor(private readonly compute: (audio: string) => Promise<Peaks> = computePeaks) {}

  /** `withFile` runs its callback on a local copy of the recording's audio (withLocalCopy). */
  async get(key: { id: string; fileBytes: number }, withFile: (use: (path: string) => Promise<Peaks>) => Promise<Peaks>): Promise<string> {
    const k = `${key.id}:${key.fileBytes}`;
    const hit = this.done.get(k);
    if (hit !== undefined) {
      // Most recently used last.
      this.done.delete(k);
      this.done.set(k, hit);
      return hit;
    }
    let p = this.pending.get(k);
    if (!p) {
      p = withFile((path) => this.compute(path)).then((peaks) => JSON.stringify(peaks));
      this.pending.set(k, p);
      p.then(
        (text) => {
          this.pending.delete(k);
          this.put(k, text);
        },
        () => this.pending.delete(k),
      );
    }
    return p;
  }

  /** Forgets a recording's peaks (erased, audio purged). */
  forget(id: string): void {
    for (const k of [...this.done.keys()]) {
      if (k.startsWith(`${id}:`)) {
        this.chars -= this.done.get(k)!.length;
        this.done.delete(k);
      }
    }
  }

  private put(k: string, text: string): void {
    if (text.length > CACHE_BUDGET_CHARS) return;
    this.done.set(k, text);
    this.chars += text.length;
    while (this.chars > CACHE_BUDGET_CHARS) {
      const oldest = this.done.keys().next().value!;
      this.chars -= this.done.get(oldest)!.length;
      this.done.delete(oldest);
    }
  }
}
