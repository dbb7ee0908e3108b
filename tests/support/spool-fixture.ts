/**
 * Writes synthetic spool files with the real SpoolWriter: tones as PCMU, PCMA, G.722, L16 or
 * Opus RTP on chosen legs, with loss, late (reordered) packets, duplicates, DTX gaps, comfort
 * noise, SSRC changes, timestamp jumps, RFC 4733 DTMF, pause events, and with or without
 * the END record. Packets are written in arrival order, merged across legs as they go, so a
 * long call does not have to be held in memory.
 */
import { execFileSync } from 'node:child_process';
import { SpoolWriter } from '../../src/spool/writer.js';
import type { SpoolKey } from '../../src/spool/cipher.js';
import { RecordType } from '../../src/spool/format.js';
import type { CodecName, LegDescriptor, MediaFormat, RecordingMeta, Role } from '../../src/types.js';
import { createOpusEncoder } from '../../src/encoder/opus-native.js';
import { inputOptionsFor } from './audio.js';

export type FixtureCodec = 'PCMU' | 'PCMA' | 'G722' | 'L16' | 'OPUS';

export interface FixtureDtmf {
  atMs: number;
  digit: string;
  durationMs: number;
}

export interface FixtureLeg {
  index: number;
  channel: 0 | 1;
  role?: Role;
  codec: FixtureCodec;
  /** L16 only: the rtpmap rate. */
  l16Rate?: number;
  /** Hz; null or 0 sends packets of digital silence. */
  toneHz?: number | null;
  /** Peak amplitude (0..1). */
  amplitude?: number;
  /** Sending starts/stops at these ms since answer (default: the whole call). */
  startMs?: number;
  stopMs?: number;
  /** No packets at all from this leg. */
  silent?: boolean;
  ssrc?: number;
  /** Packet indices (0-based, in send order) that are lost. */
  lose?: ReadonlySet<number>;
  /** Packet index → extra network delay (ms); delays longer than 20 ms reorder. */
  delay?: ReadonlyMap<number, number>;
  /** Packet indices that arrive twice. */
  duplicate?: ReadonlySet<number>;
  /** Ranges (ms since answer) with no packets, timestamps running on (DTX or hold). */
  gaps?: ReadonlyArray<readonly [number, number]>;
  /** Ranges (ms since answer) where a PT 13 comfort-noise packet goes every 200 ms instead of audio. */
  comfortNoise?: ReadonlyArray<readonly [number, number]>;
  /** From this time on, a new SSRC with new random sequence and timestamp bases. */
  ssrcChangeAtMs?: number;
  /** At this time the timestamp leaps by `by` clock ticks (sequence numbers continue). */
  tsJump?: { atMs: number; by: number };
  /** Timestamps run at this factor of real time (clock drift), e.g. 1.01. */
  clockFactor?: number;
  dtmf?: readonly FixtureDtmf[];
}

export interface FixtureSpec {
  path: string;
  answeredAt?: number;
  durationMs: number;
  legs: readonly FixtureLeg[];
  /** Ranges (ms since answer) between pause and resume events. */
  pauses?: ReadonlyArray<readonly [number, number]>;
  /** Write the END record (default true); false simulates a crash. */
  end?: boolean;
  endReason?: string;
  id?: string;
  /** Seal the spool under this data key (the writer takes it over). */
  key?: SpoolKey;
}

export interface FixtureResult {
  path: string;
  meta: RecordingMeta;
  answeredAt: number;
  endedAt: number;
  /** Arrival time of the last record written. */
  lastTime: number;
  packets: number;
}

export { linearToUlaw, linearToAlaw } from '../../src/encoder/g711.js';
import { linearToUlaw, linearToAlaw } from '../../src/encoder/g711.js';

export const PT = { PCMU: 0, PCMA: 8, G722: 9, L16: 96, OPUS: 111, CN: 13, EVENT: 101 } as const;

export function formatsFor(leg: Pick<FixtureLeg, 'codec' | 'l16Rate'>): MediaFormat[] {
  const f = (pt: number, codec: CodecName, clockRate: number, channels = 1): MediaFormat => ({ pt, codec, clockRate, channels });
  const audio =
    leg.codec === 'L16' ? f(PT.L16, 'L16', leg.l16Rate ?? 16000) : leg.codec === 'OPUS' ? f(PT.OPUS, 'OPUS', 48000, 2) : f(PT[leg.codec], leg.codec, 8000);
  return [audio, f(PT.EVENT, 'TELEPHONE-EVENT', leg.codec === 'OPUS' ? 48000 : 8000), f(PT.CN, 'CN', 8000)];
}

/** G.722 bytes of a tone, made by ffmpeg (there is no G.722 encoder in the project). */
export function g722Tone(hz: number, amplitude: number, durationMs: number): Buffer {
  const seconds = (durationMs / 1000).toFixed(3);
  const expr = hz > 0 ? `${amplitude}*sin(2*PI*${hz}*t)` : '0';
  return execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `aevalsrc=${expr}:s=16000:d=${seconds}`, '-c:a', 'g722', '-f', 'g722', '-'], {
    maxBuffer: 1 << 30,
  });
}

interface Emitted {
  time: number;
  leg: number;
  packet: Buffer;
}

function rtp(pt: number, seq: number, ts: number, ssrc: number, payload: Buffer, marker = false): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | pt;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  payload.copy(b, 12);
  return b;
}

function inRanges(ms: number, ranges: ReadonlyArray<readonly [number, number]> | undefined): boolean {
  return !!ranges?.some(([a, b]) => ms >= a && ms < b);
}

/** Yields one leg's packets in send order with their arrival times (ms since answer). */
function* legPackets(leg: FixtureLeg, durationMs: number, seed: number): Generator<Emitted> {
  if (leg.silent) return;
  const clock = leg.codec === 'OPUS' ? 48000 : leg.codec === 'L16' ? leg.l16Rate ?? 16000 : 8000;
  const pcmRate = leg.codec === 'G722' ? 16000 : leg.codec === 'OPUS' ? 48000 : clock;
  const pcmPerPacket = pcmRate / 50;
  const amp = (leg.amplitude ?? 0.5) * 32767;
  const hz = leg.toneHz ?? 0;
  const start = leg.startMs ?? 0;
  const stop = Math.min(leg.stopMs ?? durationMs, durationMs);
  let rnd = seed;
  const random32 = (): number => {
    rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0;
    return rnd;
  };
  let ssrc = leg.ssrc ?? random32();
  let seq = random32() & 0xffff;
  let tsBase = random32();
  let tsOffsetMs = 0; // where tsBase was (re)set, in ms since answer
  const g722 = leg.codec === 'G722' ? g722Tone(hz, leg.amplitude ?? 0.5, durationMs + 40) : null;
  const opus = leg.codec === 'OPUS' ? createOpusEncoder({ sampleRate: 48000, channels: 1, bitrate: 32000, complexity: 5 }) : null;
  let changed = false;
  let jumped = false;
  let index = 0;
  const dtmf = [...(leg.dtmf ?? [])].sort((a, b) => a.atMs - b.atMs);
  const factor = leg.clockFactor ?? 1;
  const tsAt = (ms: number): number => tsBase + Math.round(((ms - tsOffsetMs) * factor * clock) / 1000);

  for (let t = start; t + 20 <= stop; t += 20) {
    if (leg.ssrcChangeAtMs !== undefined && !changed && t >= leg.ssrcChangeAtMs) {
      changed = true;
      ssrc = random32();
      seq = random32() & 0xffff;
      tsBase = random32();
      tsOffsetMs = t;
    }
    if (leg.tsJump && !jumped && t >= leg.tsJump.atMs) {
      jumped = true;
      tsBase += leg.tsJump.by;
    }
    const out: Buffer[] = [];
    const ev = dtmf.find((d) => t >= d.atMs && t < d.atMs + d.durationMs + 60);
    if (ev) {
      // RFC 4733: packets every 20 ms with the event's start timestamp and growing duration,
      // the end packet three times.
      const code = '0123456789*#ABCD'.indexOf(ev.digit);
      const elapsed = Math.min(t + 20 - ev.atMs, ev.durationMs);
      const ended = t + 20 - ev.atMs >= ev.durationMs;
      if (t < ev.atMs + ev.durationMs) {
        const pl = Buffer.alloc(4);
        pl[0] = code;
        pl[1] = (ended ? 0x80 : 0) | 10;
        pl.writeUInt16BE(Math.round((elapsed * clock) / 1000), 2);
        const evPt = PT.EVENT;
        const n = ended ? 3 : 1;
        for (let k = 0; k < n; k++) out.push(rtp(evPt, seq++, tsAt(ev.atMs), ssrc, pl, t === ev.atMs));
      }
    } else if (inRanges(t, leg.gaps)) {
      // DTX or hold: nothing on the wire.
    } else if (inRanges(t, leg.comfortNoise)) {
      if ((t - start) % 200 === 0) out.push(rtp(PT.CN, seq++, tsAt(t), ssrc, Buffer.from([40])));
    } else {
      let payload: Buffer;
      const first = Math.round((t * pcmRate) / 1000);
      if (leg.codec === 'G722') {
        payload = Buffer.from(g722!.subarray(first / 2, first / 2 + pcmPerPacket / 2));
      } else {
        const pcm = new Int16Array(pcmPerPacket);
        for (let i = 0; i < pcmPerPacket; i++) pcm[i] = Math.round(amp * Math.sin((2 * Math.PI * hz * (first + i)) / pcmRate));
        if (hz === 0) pcm.fill(0);
        if (leg.codec === 'PCMU' || leg.codec === 'PCMA') {
          const enc = leg.codec === 'PCMU' ? linearToUlaw : linearToAlaw;
          payload = Buffer.from(Array.from(pcm, (s) => enc(s)));
        } else if (leg.codec === 'L16') {
          payload = Buffer.alloc(pcm.length * 2);
          for (let i = 0; i < pcm.length; i++) payload.writeInt16BE(pcm[i]!, i * 2);
        } else {
          payload = opus!.encode(Buffer.from(pcm.buffer));
        }
      }
      out.push(rtp(PT[leg.codec], seq++, tsAt(t), ssrc, payload));
    }
    for (const packet of out) {
      const i = index++;
      if (leg.lose?.has(i)) continue;
      const arrival = t + 20 + (leg.delay?.get(i) ?? 0);
      yield { time: arrival, leg: leg.index, packet };
      if (leg.duplicate?.has(i)) yield { time: arrival + 1, leg: leg.index, packet };
    }
  }
}

export function fixtureMeta(spec: Pick<FixtureSpec, 'legs' | 'id'>, answeredAt: number): RecordingMeta {
  const legs: LegDescriptor[] = spec.legs.map((l) => ({
    index: l.index,
    role: l.role ?? (l.channel === 0 ? 'customer' : 'agent'),
    channel: l.channel,
    formats: formatsFor(l),
  }));
  return {
    id: spec.id ?? '01JTESTRECORDING0000000000',
    callId: 'fixture-call',
    siprec: false,
    answeredAt,
    direction: 'inbound',
    participants: [],
    legs,
  };
}

export async function writeSpoolFixture(spec: FixtureSpec): Promise<FixtureResult> {
  const answeredAt = spec.answeredAt ?? Date.UTC(2026, 10, 22, 9, 0, 0);
  const meta = fixtureMeta(spec, answeredAt);
  const w = new SpoolWriter(spec.path, spec.key);
  w.appendMeta(answeredAt, meta);

  const events: Array<{ ms: number; kind: 'pause' | 'resume' }> = [];
  for (const [a, b] of spec.pauses ?? []) events.push({ ms: a, kind: 'pause' }, { ms: b, kind: 'resume' });
  events.sort((x, y) => x.ms - y.ms);

  const gens = spec.legs.map((l, i) => legPackets(l, spec.durationMs, 0x9e3779b9 ^ (i * 7919 + l.index)));
  const heads: Array<Emitted | null> = gens.map((g) => g.next().value ?? null);
  const pending: Emitted[] = [];
  let packets = 0;
  let lastTime = answeredAt;
  const flushUpTo = async (ms: number): Promise<void> => {
    pending.sort((a, b) => a.time - b.time);
    let n = 0;
    while (n < pending.length && pending[n]!.time <= ms) {
      const p = pending[n++]!;
      while (events.length > 0 && events[0]!.ms <= p.time) {
        const e = events.shift()!;
        w.appendEvent(answeredAt + e.ms, { kind: e.kind });
        lastTime = answeredAt + e.ms;
      }
      w.appendPacket(RecordType.Rtp, p.leg, answeredAt + p.time, p.packet);
      lastTime = answeredAt + p.time;
      packets++;
    }
    pending.splice(0, n);
    // One write (a sealed spool's block) per second of call, as the daemon's flush timer makes them per 200 ms.
    w.flush();
    if (packets % 2000 === 0) await w.drain();
  };
  // Pull every leg up to a moving horizon; anything that may still be overtaken (delays up
  // to 5 s) stays pending.
  const HORIZON_MS = 5000;
  for (let t = 0; heads.some((h) => h !== null); t += 1000) {
    for (let i = 0; i < gens.length; i++) {
      while (heads[i] && heads[i]!.time < t + HORIZON_MS) {
        pending.push(heads[i]!);
        heads[i] = gens[i]!.next().value ?? null;
      }
    }
    await flushUpTo(t);
  }
  await flushUpTo(Infinity);
  for (const e of events) {
    if (e.ms > spec.durationMs) continue;
    w.appendEvent(answeredAt + e.ms, { kind: e.kind });
    lastTime = Math.max(lastTime, answeredAt + e.ms);
  }
  const endedAt = answeredAt + spec.durationMs;
  await w.close(spec.end === false ? null : { endedAt, reason: spec.endReason ?? 'bye' });
  return { path: spec.path, meta, answeredAt, endedAt, lastTime, packets };
}

/** Amplitude of the `hz` component of `x` (Goertzel), in the samples' units. */
export function toneLevel(x: ArrayLike<number>, hz: number, rate: number, from = 0, to = x.length): number {
  const w = 2 * Math.cos((2 * Math.PI * hz) / rate);
  let a = 0;
  let b = 0;
  for (let i = from; i < to; i++) {
    const n = x[i]! + w * a - b;
    b = a;
    a = n;
  }
  return (2 * Math.sqrt(Math.max(0, a * a + b * b - w * a * b))) / (to - from);
}

export function peak(x: ArrayLike<number>, from = 0, to = x.length): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** Decodes any audio file with ffmpeg to interleaved Int16 at `rate` with `channels`. */
export function decodeWithFfmpeg(file: string, rate: number, channels: number): Int16Array {
  const buf = execFileSync('ffmpeg', ['-v', 'error', ...inputOptionsFor(file), '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', String(rate), '-'], { maxBuffer: 1 << 30 });
  return new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1);
}

/** One channel of interleaved samples. */
export function channelOf(x: Int16Array, channel: number, channels: number): Int16Array {
  const out = new Int16Array(Math.floor(x.length / channels));
  for (let i = 0; i < out.length; i++) out[i] = x[i * channels + channel]!;
  return out;
}
