/**
 * A live call's audio as an Ogg Opus stream, a little behind the capture: the call's spool is
 * followed as it grows (src/spool/follower.ts) from `fromMs` on, and its packets run through
 * the encoder's own stages (LegPipeline → CallTimeline → FrameEncoder → OggOpusWriter), whose
 * pages go to `onPage` instead of a file. Both channels, customer left and agent right, as in
 * the recording.
 *
 * The stream is its own listener's: it never touches the recording (the spool is only read)
 * and ends when the spool's END record is read, when the call is over and the spool has no
 * more, or when stop() is called (the listener went away). Memory is the follower's buffer,
 * the timeline's rings and one Ogg page.
 */
import { RecordType } from '../spool/format.js';
import { SpoolFollower, type SpoolRecord } from '../spool/follower.js';
import type { LegDescriptor, RecordingMeta } from '../types.js';
import { newRtpHeader, readRtpHeader } from '../rtp/packet.js';
import { epochNow } from '../rtp/receiver.js';
import { chooseOutputRate } from './codecs.js';
import { CallTimeline } from './timeline.js';
import { createOpusEncoder, OPUS_PRE_SKIP_48K } from './opus-native.js';
import { OggOpusWriter } from './ogg.js';
import { FrameEncoder, SAMPLES_48K_PER_FRAME } from './frame-encoder.js';
import { LegPipeline } from './leg-pipeline.js';
import { parseRecordJson } from './spool-scan.js';

const FRAME_MS = 20;
/** How late a packet may arrive and still be heard: shorter than a recording's, to stay near live. */
export const LISTEN_LAG_MS = 500;
/** How often the spool is read for new records. */
export const LISTEN_POLL_MS = 100;
/**
 * Arrival time known to be on disk: the capture hands its spool to the kernel every 200 ms,
 * so by now − this every record has been written, and silence can be emitted up to there.
 */
const SPOOL_SETTLED_MS = 400;
/** Audio packets per Ogg page: 200 ms, so the listener is never a whole second behind. */
const PAGE_PACKETS = 10;
const SPURT_IDLE_MS = 200;

export interface ListenStreamOptions {
  readonly spoolPath: string;
  /** Arrival time (the capture's clock, epochNow): packets that arrived before it are not played. */
  readonly fromMs: number;
  readonly complexity: number;
  readonly bitrate: number;
  readonly onPage: (page: Buffer) => void;
  /** True once the call has ended (its spool then grows no more). */
  readonly callEnded: () => boolean;
  /** The capture's arrival clock (default epochNow, the receivers' own). */
  readonly now?: () => number;
}

export class ListenStream {
  private readonly follower: SpoolFollower;
  private readonly now: () => number;
  private readonly header = newRtpHeader();
  private readonly legs = new Map<number, LegPipeline>();
  private timeline: CallTimeline | null = null;
  private frames: FrameEncoder | null = null;
  private ogg: OggOpusWriter | null = null;
  private rate: 8000 | 16000 = 8000;
  private latest = -Infinity;
  private endedAt: number | null = null;
  private paused = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private framesOut = 0;

  constructor(private readonly opts: ListenStreamOptions) {
    this.follower = new SpoolFollower(opts.spoolPath);
    this.now = opts.now ?? epochNow;
  }

  /** Frames (20 ms) sent so far. */
  get frameCount(): number {
    return this.framesOut;
  }

  /** Stops at the next step; run() then resolves. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** Streams until the call ends or stop(); always closes the spool. */
  async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const ended = this.opts.callEnded();
        const n = await this.follower.read((r) => this.onRecord(r));
        if (this.follower.ended || this.follower.damaged || (ended && n === 0)) break;
        this.advance(Math.max(this.latest, this.now() - SPOOL_SETTLED_MS));
        this.ogg?.flush();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, LISTEN_POLL_MS);
        });
        this.wake = null;
      }
      if (!this.stopped) this.finish();
    } finally {
      await this.follower.close();
    }
  }

  private onRecord(r: SpoolRecord): void {
    switch (r.type) {
      case RecordType.Meta: {
        const m = parseRecordJson<RecordingMeta>(r.payload);
        if (m && Array.isArray(m.legs)) for (const d of m.legs) this.ensureLeg(d);
        break;
      }
      case RecordType.Event: {
        const e = parseRecordJson<{ kind?: string }>(r.payload);
        if (e?.kind === 'pause' || e?.kind === 'resume') this.paused = e.kind === 'pause';
        break;
      }
      case RecordType.End:
        this.endedAt = r.time;
        break;
      case RecordType.Rtp: {
        if (r.time < this.opts.fromMs || this.paused) break;
        const leg = this.legs.get(r.leg);
        if (!leg) break;
        // Time passes first (as in the CallEncoder): the frames the lag lets go of at this
        // arrival leave before its packet is placed, so the ring always has room for it.
        if (r.time > this.latest) {
          this.latest = r.time;
          for (const l of this.legs.values()) if (l.spurtOpen && this.latest - l.lastArrival > SPURT_IDLE_MS) l.flushSpurt();
          this.advance(this.latest);
        }
        if (readRtpHeader(r.payload, r.payload.length, this.header) === null) leg.onRtp(r.payload, this.header, r.time);
        break;
      }
      default:
        break;
    }
  }

  /** The first META sets the stream's rate and opens the encoder; later ones add or update legs. */
  private ensureLeg(d: LegDescriptor): void {
    if (this.timeline === null) this.open(d);
    const leg = this.legs.get(d.index);
    if (leg) {
      leg.setDescriptor(d);
      return;
    }
    this.timeline!.addLeg(d.index, d.channel === 1 ? 1 : 0);
    this.legs.set(d.index, new LegPipeline(d, this.timeline!, this.rate, this.opts.fromMs, false));
  }

  private open(first: LegDescriptor): void {
    this.rate = chooseOutputRate(first.formats);
    const frameSamples = (this.rate * FRAME_MS) / 1000;
    this.timeline = new CallTimeline({ sampleRate: this.rate, frameSamples, totalFrames: Number.MAX_SAFE_INTEGER, lagMs: LISTEN_LAG_MS });
    this.ogg = new OggOpusWriter({ write: (page) => this.opts.onPage(Buffer.from(page)) }, { channels: 2, channelMapping: 1, inputSampleRate: this.rate, preSkip: OPUS_PRE_SKIP_48K, pagePackets: PAGE_PACKETS });
    const legEncoder = () => createOpusEncoder({ sampleRate: this.rate, channels: 1, bitrate: Math.round(this.opts.bitrate / 2), complexity: this.opts.complexity });
    this.frames = new FrameEncoder([legEncoder(), legEncoder()], this.ogg, true, frameSamples);
  }

  private readonly sink = (frame: Int16Array): void => {
    this.frames!.push(frame);
    this.framesOut++;
  };

  /** Emits every frame the timeline may let go of at arrival time `t` (epoch ms). */
  private advance(t: number): void {
    if (this.timeline === null || !Number.isFinite(t)) return;
    this.timeline.advance(Math.floor(((t - this.opts.fromMs) * this.rate) / 1000), this.sink);
  }

  /** The call is over: its last audio, then the EOS page. */
  private finish(): void {
    if (this.timeline === null) return;
    for (const leg of this.legs.values()) leg.finish();
    const end = this.endedAt ?? Math.max(this.latest, this.opts.fromMs);
    this.advance(end + LISTEN_LAG_MS);
    this.frames!.finish();
    if (this.framesOut > 0) this.ogg!.finish(Math.max(0, this.framesOut * SAMPLES_48K_PER_FRAME - OPUS_PRE_SKIP_48K));
  }
}
