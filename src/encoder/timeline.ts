/**
 * Placing each leg's packets on the call's timeline, and emitting the timeline as 20 ms
 * stereo frames with bounded memory.
 *
 * Time is counted in output samples since answer. A leg's first packet is anchored at its
 * arrival; every later packet of the same SSRC goes where its RTP timestamp says relative to
 * that anchor, so network jitter does not move audio and gaps (DTX, comfort noise, loss,
 * hold) stay silent. The anchor is re-taken on the arrival of the current packet when:
 *   - the SSRC changes (a new source restarts its timestamps anywhere);
 *   - the clock rate changes (a re-INVITE moved the leg to another codec);
 *   - a packet's timestamp place and its arrival disagree by more than JUMP_MS (1 s): a
 *     timestamp jump, e.g. a media server restarting its clock after hold;
 *   - over a whole DRIFT_WINDOW_MS (1 s) of arrivals, every packet was more than DRIFT_MS
 *     (300 ms) late, or every packet more than 300 ms early: the sender's clock runs at
 *     another speed than ours (or the anchor packet itself was delayed). Requiring every
 *     packet of the window keeps a single jitter burst from moving the anchor.
 *
 * RTCP sender reports refine this (SenderReportAligner): an SR ties an RTP timestamp to the
 * sender's wall clock, so when the legs' SRs share one clock (one SRC sends them all), the
 * first packets' send times are known, and a leg whose first packet happened to arrive late
 * is moved back to where it was sent relative to the others. Only first-packet delay is
 * corrected, and only by up to SR_MAX_SHIFT_MS: a bigger disagreement means the clocks are
 * not one, and arrival stays the rule.
 *
 * CallTimeline keeps one ring per leg (RING_MS of audio) and emits frame after frame once
 * arrival time has passed a frame by LAG_MS, the longest a packet may be late and still be
 * heard. A packet placed before the emitted edge is dropped as too late. LAG_MS is also how
 * far the live encoder stays behind the capture: at hang-up about that much audio is left.
 * The ring spans the lag plus JUMP_MS ahead of the arrival clock, the furthest a packet can
 * be placed ahead before its leg is re-anchored. Its frames are blocks of the thread's
 * FrameArena (frame-arena.ts), taken when a packet is written there and given back when the
 * frame is emitted: a leg holds about LAG_MS of audio while it talks, never the whole span.
 */

import { Stage, stageBegin, stageEnd } from '../stage-clock.js';
import { frameArena, type FrameArena } from './frame-arena.js';

export const JUMP_MS = 1000;
export const DRIFT_MS = 300;
export const DRIFT_WINDOW_MS = 1000;
export const LAG_MS = 1000;
export const RING_MS = LAG_MS + JUMP_MS;
/** Largest correction a sender report may make to a leg's anchor (below DRIFT_MS, so the drift check does not undo it). */
export const SR_MAX_SHIFT_MS = 250;

export interface PlaceResult {
  /** Timeline position (output samples since answer) of the packet's first sample. */
  pos: number;
  /** The anchor was (re)taken on this packet. */
  anchored: boolean;
  /** RTP timestamp extended past 32-bit wrap-around. */
  extTs: number;
}

/**
 * Turns (SSRC, timestamp, arrival) into a timeline position for one leg. Sequence numbers,
 * duplicates, loss and jitter are the leg's LegReception's business (src/rtp/stats.ts): the
 * placer sees only packets that are not duplicates.
 * `sampleRate` is the timeline's rate; `answeredAt` is epoch ms of sample 0.
 */
export class LegPlacer {
  private readonly sampleRate: number;
  private readonly answeredAt: number;
  private clockRate = 8000;
  /** The source being placed, -1 before the first packet. */
  private ssrc = -1;
  private lastTs = 0;
  private extTs = 0;
  private anchorExtTs = 0;
  private anchorMs = 0;
  private anchored = false;
  private windowStart = -Infinity;
  private windowMin = Infinity;
  private windowMax = -Infinity;
  private alignSsrc: number | null = null;
  private alignShiftMs = 0;
  /** The result of place(), reused: one object per leg, not one per packet. */
  private readonly result: PlaceResult = { pos: 0, anchored: false, extTs: 0 };
  reanchors = 0;

  constructor(sampleRate: number, answeredAt: number) {
    this.sampleRate = sampleRate;
    this.answeredAt = answeredAt;
  }

  /** The RTP clock rate of the leg's current format; a change re-anchors on the next packet. */
  setClockRate(rate: number): void {
    if (rate > 0 && rate !== this.clockRate) {
      this.clockRate = rate;
      this.anchored = false;
    }
  }

  /**
   * Extends `ts` of `ssrc` past 32-bit wrap-around. A new source starts its own count and
   * is anchored afresh (a new source restarts its timestamps anywhere).
   */
  private extend(ssrc: number, ts: number): number {
    if (ssrc !== this.ssrc) {
      this.ssrc = ssrc;
      this.lastTs = ts;
      this.extTs = ts;
      this.anchored = false;
      return ts;
    }
    const delta = (ts - this.lastTs) | 0;
    const ext = this.extTs + delta;
    // Only move the reference forward, so a reordered packet does not pull it back.
    if (delta > 0) {
      this.lastTs = ts;
      this.extTs = ext;
    }
    return ext;
  }

  /**
   * Moves the first anchor of source `ssrc` by `shiftMs` (from SenderReportAligner): its
   * first packet is placed where the sender's clock says it was sent, not where it arrived.
   * Later re-anchors (SSRC change, jump, drift) go by arrival again.
   */
  alignFirstAnchor(ssrc: number, shiftMs: number): void {
    if (Math.abs(shiftMs) > SR_MAX_SHIFT_MS) return;
    this.alignSsrc = ssrc >>> 0;
    this.alignShiftMs = shiftMs;
  }

  private anchor(extTs: number, arrivalMs: number): void {
    this.anchorExtTs = extTs;
    this.anchorMs = arrivalMs;
    if (this.alignSsrc !== null && this.ssrc === this.alignSsrc) {
      this.anchorMs += this.alignShiftMs;
      this.alignSsrc = null;
    }
    this.anchored = true;
    this.windowStart = arrivalMs;
    this.windowMin = Infinity;
    this.windowMax = -Infinity;
    this.reanchors++;
  }

  /** Where timestamp `extTs` of the current source lies, in ms since epoch. */
  private tsMs(extTs: number): number {
    return this.anchorMs + ((extTs - this.anchorExtTs) * 1000) / this.clockRate;
  }

  private toPos(ms: number): number {
    return Math.round(((ms - this.answeredAt) * this.sampleRate) / 1000);
  }

  /**
   * Places one media packet (audio, comfort noise or an event). The result is the placer's
   * own object, valid until the next call. `trackTiming` false (telephone-events, whose
   * timestamp is the event's start while they keep arriving for its whole duration) places
   * without feeding the drift detector.
   */
  place(ssrc: number, ts: number, arrivalMs: number, trackTiming = true): Readonly<PlaceResult> {
    const extTs = this.extend(ssrc >>> 0, ts >>> 0);
    let anchoredNow = false;
    if (!this.anchored) {
      this.anchor(extTs, arrivalMs);
      anchoredNow = true;
    } else if (trackTiming) {
      const diff = arrivalMs - this.tsMs(extTs);
      if (Math.abs(diff) > JUMP_MS) {
        this.anchor(extTs, arrivalMs);
        anchoredNow = true;
      } else {
        if (diff < this.windowMin) this.windowMin = diff;
        if (diff > this.windowMax) this.windowMax = diff;
        if (arrivalMs - this.windowStart >= DRIFT_WINDOW_MS) {
          const sustained = this.windowMin > DRIFT_MS || this.windowMax < -DRIFT_MS;
          if (sustained) {
            this.anchor(extTs, arrivalMs);
            anchoredNow = true;
          } else {
            this.windowStart = arrivalMs;
            this.windowMin = Infinity;
            this.windowMax = -Infinity;
          }
        }
      }
    }
    const r = this.result;
    r.pos = this.toPos(this.tsMs(extTs));
    r.anchored = anchoredNow;
    r.extTs = extTs;
    return r;
  }
}

/** One RTCP sender report: an RTP timestamp and the sender's wall clock at that instant. */
export interface SenderClockSample {
  readonly ssrc: number;
  /** The SR's NTP time as epoch milliseconds. */
  readonly ntpMs: number;
  readonly rtpTimestamp: number;
}

/**
 * Collects each leg's first packet and its sender reports (a pre-scan of the spool), and
 * says how far to move each leg's first anchor so that the legs sit relative to each other
 * as the sender's clock says, not as their first packets happened to arrive.
 *
 * A leg's offset is arrival − sender time of its first packet (network delay plus clock
 * difference). With one sender clock the offsets differ only by how much each first packet
 * was delayed; the least delayed leg is the reference and the others move back to it.
 */
export class SenderReportAligner {
  private readonly first = new Map<number, { ssrc: number; rtpTs: number; arrivalMs: number; clockRate: number }>();
  private readonly reports = new Map<number, SenderClockSample>();

  /** The leg's first RTP packet (later calls for the same leg are ignored). */
  noteFirstPacket(leg: number, ssrc: number, rtpTs: number, arrivalMs: number, clockRate: number): void {
    if (!this.first.has(leg) && clockRate > 0) this.first.set(leg, { ssrc: ssrc >>> 0, rtpTs: rtpTs >>> 0, arrivalMs, clockRate });
  }

  /** The leg's first packet is known: later packets need not be looked at. */
  hasFirstPacket(leg: number): boolean {
    return this.first.has(leg);
  }

  /** The leg has a sender report of its first packet's source. */
  hasSenderReport(leg: number): boolean {
    return this.reports.has(leg);
  }

  /** A sender report received on the leg; the first one of the first packet's source is kept. */
  noteSenderReport(leg: number, sr: SenderClockSample): void {
    const f = this.first.get(leg);
    if (this.reports.has(leg) || (f !== undefined && f.ssrc !== sr.ssrc >>> 0)) return;
    if (!Number.isFinite(sr.ntpMs)) return;
    this.reports.set(leg, sr);
  }

  /** Sender time (epoch ms) of the leg's first packet, or null without a matching SR. */
  private sentAt(leg: number): number | null {
    const f = this.first.get(leg);
    const sr = this.reports.get(leg);
    if (f === undefined || sr === undefined || (sr.ssrc >>> 0) !== f.ssrc) return null;
    // Signed 32-bit difference: the SR may come before or after the packet, across a wrap.
    const delta = ((f.rtpTs - (sr.rtpTimestamp >>> 0)) | 0) / f.clockRate;
    return sr.ntpMs + delta * 1000;
  }

  /**
   * Anchor shifts in ms (≤ 0) per leg, with the SSRC they apply to. Empty unless at least two
   * legs have a usable SR and every such leg agrees with the reference within SR_MAX_SHIFT_MS.
   */
  shifts(): Map<number, { ssrc: number; shiftMs: number }> {
    const offsets = new Map<number, number>();
    for (const [leg, f] of this.first) {
      const sent = this.sentAt(leg);
      if (sent !== null) offsets.set(leg, f.arrivalMs - sent);
    }
    const out = new Map<number, { ssrc: number; shiftMs: number }>();
    if (offsets.size < 2) return out;
    const reference = Math.min(...offsets.values());
    for (const offset of offsets.values()) if (offset - reference > SR_MAX_SHIFT_MS) return out;
    for (const [leg, offset] of offsets) {
      const shiftMs = reference - offset;
      if (shiftMs !== 0) out.set(leg, { ssrc: this.first.get(leg)!.ssrc, shiftMs });
    }
    return out;
  }
}

export interface TimelineOptions {
  sampleRate: number;
  /** Samples per frame and channel (20 ms). */
  frameSamples: number;
  /** Frames in the whole recording; nothing is emitted past it (Infinity while the call lives). */
  totalFrames: number;
  /** Intervals (samples since answer, [start, end)) written as silence. */
  silenced?: ReadonlyArray<readonly [number, number]>;
  lagMs?: number;
  ringMs?: number;
}

/** Receives each stereo frame (interleaved L/R, valid until the next call). */
export type FrameSink = (frame: Int16Array, index: number) => void;

interface Track {
  readonly channel: 0 | 1;
  /** Per frame of the ring, the arena slot holding its samples, or -1 (nothing written: silence). */
  readonly slots: Int32Array;
}

/**
 * The call's timeline: legs write decoded samples at their positions; frames leave in order
 * once they are LAG_MS behind the arrival clock. Legs on the same channel are summed with
 * saturation (a conference on one side).
 */
export class CallTimeline {
  readonly sampleRate: number;
  readonly frameSamples: number;
  /** Frames in the whole recording: set by endAt() once the call's length is known. */
  totalFrames: number;
  private readonly lag: number;
  private readonly ringSize: number;
  private readonly tracks = new Map<number, Track>();
  /** The same tracks as a list, for the per-frame mix (no iterator per frame). */
  private readonly trackList: Track[] = [];
  /** [start, end) in samples since answer, in order; end is Infinity while a pause lasts. */
  private readonly silenced: Array<[number, number]>;
  /** Where the tracks' samples live (shared by the thread's calls). */
  private readonly arena: FrameArena;
  /** Arena slots this timeline holds now. */
  private held = 0;
  private readonly frame: Int32Array;
  private readonly out: Int16Array;
  /** Samples since answer already emitted (a multiple of frameSamples). */
  emittedPos = 0;
  framesEmitted = 0;
  /** Samples written too late to be heard, or too far ahead to fit the ring. */
  samplesDropped = 0;

  constructor(opts: TimelineOptions) {
    this.sampleRate = opts.sampleRate;
    this.frameSamples = opts.frameSamples;
    this.totalFrames = opts.totalFrames;
    this.lag = Math.round(((opts.lagMs ?? LAG_MS) * opts.sampleRate) / 1000);
    const ring = Math.round(((opts.ringMs ?? RING_MS) * opts.sampleRate) / 1000);
    // Whole frames, so a frame never wraps around the ring's end.
    this.ringSize = Math.ceil(ring / opts.frameSamples) * opts.frameSamples;
    if (this.ringSize < this.lag + 2 * opts.frameSamples) throw new RangeError('timeline ring shorter than its lag');
    this.silenced = (opts.silenced ?? []).map(([a, b]): [number, number] => [a, b]).sort((a, b) => a[0] - b[0]);
    this.arena = frameArena(opts.frameSamples);
    this.frame = new Int32Array(opts.frameSamples * 2);
    this.out = new Int16Array(opts.frameSamples * 2);
  }

  /** Bytes of audio this timeline holds in the arena now (at most the ring of each leg). */
  get heldBytes(): number {
    return this.held * this.frameSamples * 2;
  }

  /** Gives every block back to the arena (the call is done, or abandoned). Idempotent. */
  release(): void {
    for (const t of this.trackList) {
      for (let b = 0; b < t.slots.length; b++) {
        if (t.slots[b]! < 0) continue;
        this.arena.give(t.slots[b]!);
        t.slots[b] = -1;
      }
    }
    this.held = 0;
  }

  /** A pause starts at `pos` (samples since answer): silence until resumeAt(). */
  pauseAt(pos: number): void {
    const last = this.silenced[this.silenced.length - 1];
    if (last && last[1] === Infinity) return;
    this.silenced.push([Math.max(0, pos), Infinity]);
  }

  /** The pause in force ends at `pos`. */
  resumeAt(pos: number): void {
    const last = this.silenced[this.silenced.length - 1];
    if (last && last[1] === Infinity) last[1] = Math.max(last[0], pos);
  }

  /** The call's length is known: `frames` in all (never fewer than already emitted). */
  endAt(frames: number): void {
    this.totalFrames = Math.max(frames, this.framesEmitted);
  }

  /** Declares a leg on its output channel (idempotent; the channel of the first call stays). */
  addLeg(leg: number, channel: 0 | 1): void {
    if (this.tracks.has(leg)) return;
    const t: Track = { channel, slots: new Int32Array(this.ringSize / this.frameSamples).fill(-1) };
    this.tracks.set(leg, t);
    this.trackList.push(t);
  }

  hasLeg(leg: number): boolean {
    return this.tracks.has(leg);
  }

  /** Writes `pcm` at timeline position `pos` of `leg`, overwriting (duplicates are harmless). */
  write(leg: number, pos: number, pcm: Int16Array): void {
    const t = this.tracks.get(leg);
    if (!t) return;
    let start = 0;
    let end = pcm.length;
    if (pos < this.emittedPos) start = Math.min(end, this.emittedPos - pos);
    const limit = this.emittedPos + this.ringSize;
    if (pos + end > limit) end = Math.max(start, limit - pos);
    this.samplesDropped += pcm.length - (end - start);
    const fs = this.frameSamples;
    let i = start;
    while (i < end) {
      const p = (pos + i) % this.ringSize;
      const b = (p / fs) | 0;
      const off = p - b * fs;
      const run = Math.min(end - i, fs - off);
      let slot = t.slots[b]!;
      if (slot < 0) {
        slot = this.arena.take();
        t.slots[b] = slot;
        this.held++;
      }
      this.arena.slabOf(slot).set(pcm.subarray(i, i + run), this.arena.offsetOf(slot) + off);
      i += run;
    }
  }

  /** Emits every frame that is LAG behind `nowPos` (samples since answer). */
  advance(nowPos: number, sink: FrameSink): void {
    while (this.framesEmitted < this.totalFrames && this.emittedPos + this.frameSamples <= nowPos - this.lag) this.emit(sink);
  }

  /** Emits what is left, up to totalFrames (silence past anything written). */
  finish(sink: FrameSink): void {
    while (this.framesEmitted < this.totalFrames) this.emit(sink);
  }

  private emit(sink: FrameSink): void {
    const tm = stageBegin(Stage.mix);
    const n = this.frameSamples;
    const f = this.frame;
    f.fill(0);
    const b = (this.emittedPos % this.ringSize) / n;
    for (let k = 0; k < this.trackList.length; k++) {
      const t = this.trackList[k]!;
      const slot = t.slots[b]!;
      if (slot < 0) continue;
      const samples = this.arena.slabOf(slot);
      const base = this.arena.offsetOf(slot);
      for (let i = 0, o = t.channel; i < n; i++, o += 2) f[o]! += samples[base + i]!;
      this.arena.give(slot);
      t.slots[b] = -1;
      this.held--;
    }
    for (const [s, e] of this.silenced) {
      if (e <= this.emittedPos) continue;
      if (s >= this.emittedPos + n) break;
      const from = Math.max(s, this.emittedPos) - this.emittedPos;
      const to = Math.min(e, this.emittedPos + n) - this.emittedPos;
      f.fill(0, from * 2, to * 2);
    }
    const out = this.out;
    for (let i = 0; i < f.length; i++) {
      const v = f[i]!;
      out[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    stageEnd(Stage.mix, tm);
    sink(out, this.framesEmitted);
    this.emittedPos += n;
    this.framesEmitted++;
  }
}
