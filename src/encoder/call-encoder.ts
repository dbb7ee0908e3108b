/**
 * One call's spool → one two-channel Ogg Opus file (customer left, agent right), each leg its
 * own mono Opus stream (RFC 7845 channel mapping family 1), encoded while the call is live.
 *
 * The CallEncoder follows the spool as the capture appends to it (SpoolFollower): each
 * advance() takes the records written since the last one, hands each RTP packet to its leg's
 * LegPipeline (statistics, placement, decoding, DTMF), which writes samples into the
 * CallTimeline; the timeline hands 20 ms frames to the FrameEncoder (silence gate, Opus,
 * multistream Ogg) once they are LAG_MS behind the newest record. Every leg's state (placer,
 * decoder, resampler, gate, Opus state, timeline ring) lives for the whole call, and memory
 * is bounded by the rings, one Ogg page and the follower's buffer, whatever the call's
 * length. finish() reads the rest once the spool is closed, encodes the last LAG_MS, sets the
 * end granule and commits the file. A whole spool (recovery, a retry) is the same run in one
 * go (encode-spool.ts). A live listener's stream (listen-stream.ts) is the same run too, from
 * a point in the call on, with a shorter lag, small pages and its pages sent to the listener.
 *
 * What a whole-file pass could look up in advance is decided as it comes:
 *   - the output rate, from the first META's formats (8 kHz, or 16 kHz with a wideband
 *     codec). A re-INVITE that later moves a leg to a wider codec is resampled to that rate;
 *     the file's rate never changes mid-call;
 *   - each leg's channel, from the first META that names it (the call manager keeps a
 *     recording leg's channel and role when the roles change, so this is also the last);
 *   - sender-report alignment, by StartScan before the first packet is placed;
 *   - pauses, from the pause and resume records as they come (silence from one to the other);
 *   - the call's length, at finish: the END record's time, or the last record's (truncated).
 */
import { SpoolFollower, type SpoolFollowerOptions, type SpoolRecord } from '../spool/follower.js';
import { RecordType, type SpoolEnd, type SpoolEvent } from '../spool/format.js';
import { TallenneError } from '../errors.js';
import type { LegDescriptor, PauseInterval, RecordingMeta, RecordingStatus } from '../types.js';
import { newRtpHeader, readRtpHeader } from '../rtp/packet.js';
import { chooseOutputRate } from './codecs.js';
import { CallTimeline, JUMP_MS, LAG_MS } from './timeline.js';
import { createOpusEncoder, OPUS_PRE_SKIP_48K, type OpusEncoderHandle } from './opus-native.js';
import { OggOpusWriter } from './ogg.js';
import { FrameEncoder, SAMPLES_48K_PER_FRAME } from './frame-encoder.js';
import { LegPipeline } from './leg-pipeline.js';
import { parseMeta, parseRecordJson, StartScan } from './spool-scan.js';
import { threadCpuMicros } from './cpu-time.js';
import { openRecordingOutput, type RecordingOutput } from './recording-output.js';
import type { EncodeJob, EncodeResult } from './encode-spool.js';
import type { StagingArea } from '../storage/audio-store.js';
import { Stage, stageTimed } from '../stage-clock.js';

/** End reason recorded when the spool has no END record (the daemon died mid-call). */
export const END_REASON_NO_END_RECORD = 'spool-without-end';

const FRAME_MS = 20;
/** A talk spurt whose leg has sent nothing for this long is flushed out of its resampler. */
const SPURT_IDLE_MS = 200;

/** A job as the CallEncoder takes it: without a staging area when its options give an output of their own. */
export type CallEncoderJob = Omit<EncodeJob, 'staging'> & { readonly staging?: StagingArea };

function stagingOf(job: CallEncoderJob): StagingArea {
  if (!job.staging) throw new TallenneError('TALLENNE_ENCODE_FAILED', `${job.id}: an encode job without a staging area and no output of its own`);
  return job.staging;
}

export interface CallEncoderOptions extends SpoolFollowerOptions {
  /** Where the Ogg pages go (default: the recording's file in the AudioStore, openRecordingOutput). */
  readonly output?: (meta: RecordingMeta) => RecordingOutput;
  /** How far behind the newest record frames are emitted (default LAG_MS). */
  readonly lagMs?: number;
  /** Audio packets per Ogg page (default about 1 s). */
  readonly pagePackets?: number;
  /** Arrival time (epoch ms) the audio starts at; earlier packets are skipped (default: the answer). */
  readonly fromMs?: number;
  /** Move the legs' first anchors by their sender reports (default true; a listener starts at once without). */
  readonly alignSenderReports?: boolean;
}

/** What exists once the first META is read. */
interface Started {
  readonly answeredAt: number;
  /** Epoch ms of the audio's first sample: the answer, or fromMs if later. */
  readonly origin: number;
  readonly outRate: number;
  readonly timeline: CallTimeline;
  readonly output: RecordingOutput;
  readonly ogg: OggOpusWriter;
  readonly frames: FrameEncoder;
  readonly sink: (frame: Int16Array) => void;
}

export class CallEncoder {
  readonly job: CallEncoderJob;
  private readonly media: SpoolFollower;
  /** The start-of-call look-ahead; dropped (with its buffer) once it has decided. */
  private scan: StartScan | null;
  private started: Started | null = null;
  private meta: RecordingMeta | null = null;
  private readonly legs = new Map<number, LegPipeline>();
  private shifts: Map<number, { ssrc: number; shiftMs: number }> | null = null;
  private readonly header = newRtpHeader();
  /** Newest record time (epoch ms): the arrival clock the timeline emits behind. */
  private now = -Infinity;
  private paused = false;
  private readonly pauses: Array<[number, number | null]> = [];
  private end: SpoolEnd | null = null;
  private cpuMicros = 0;
  private done = false;
  /** onRecord, timed as the bench's encoderRecord stage when the stage clock is on. */
  private readonly record = stageTimed(Stage.encoderRecord, (r: SpoolRecord): void => this.onRecord(r));
  private readonly opts: CallEncoderOptions;
  private readonly fromMs: number;

  constructor(job: CallEncoderJob, opts: CallEncoderOptions = {}) {
    this.job = job;
    this.opts = opts;
    this.fromMs = opts.fromMs ?? -Infinity;
    this.media = new SpoolFollower(job.spoolPath, { bufferBytes: opts.bufferBytes, key: job.spoolKey, blockingReads: opts.blockingReads });
    if (opts.alignSenderReports === false) {
      this.scan = null;
      this.shifts = new Map();
    } else this.scan = new StartScan(job.spoolPath, job.spoolKey, opts.blockingReads);
  }

  /** The spool has no more to give: its END record was read, or it is damaged there. */
  get spoolEnded(): boolean {
    return this.media.ended || this.media.damaged;
  }

  /** 20 ms frames encoded so far. */
  get framesEmitted(): number {
    return this.started?.timeline.framesEmitted ?? 0;
  }

  /** Epoch ms of the call's answer, once the first META is read. */
  get answeredAt(): number | null {
    return this.started?.answeredAt ?? null;
  }

  /** Call time encoded so far (ms since answer). */
  get encodedMs(): number {
    const s = this.started;
    return s ? (s.timeline.emittedPos * 1000) / s.outRate : 0;
  }

  /** How far the encoded audio is behind the wall clock `nowMs` (0 before the call's answer time is read). */
  lagMs(nowMs: number): number {
    const answeredAt = this.started?.answeredAt ?? this.scan?.answeredAt ?? null;
    return answeredAt === null ? 0 : Math.max(0, nowMs - answeredAt - this.encodedMs);
  }

  /**
   * This call's buffers in the encoder: the follower's read buffer (and the start scan's
   * while it lasts), the audio its timeline holds and its Ogg page buffer.
   */
  get bufferBytes(): number {
    const s = this.started;
    return this.media.bufferBytes + (this.scan?.bufferBytes ?? 0) + (s ? s.timeline.heldBytes + s.ogg.bufferBytes : 0);
  }

  /** Reads what the spool holds now and encodes up to the lag behind its newest record; returns the records read. */
  async advance(): Promise<number> {
    const before = this.media.records;
    await this.step(false);
    return this.media.records - before;
  }

  /**
   * Every record that arrived before epoch ms `t` is on disk (the caller knows the capture's
   * flush interval): the arrival clock moves to `t`, so a quiet call still goes on, as silence.
   */
  settledUntil(t: number): void {
    if (this.done || !(t > this.now)) return;
    this.now = t;
    this.emitDue();
  }

  /** Writes the audio queued on the pending Ogg page now (a listener hears it without waiting for a full page). */
  flushPages(): void {
    if (!this.done) this.started?.ogg.flush();
  }

  /** The spool is closed: reads the rest, encodes to the end and commits the file. */
  async finish(): Promise<EncodeResult> {
    await this.step(true);
    try {
      return this.complete();
    } catch (e) {
      await this.abort();
      throw wrap(this.job.id, e);
    }
  }

  /** Gives up: the partial file is removed and the spool left as it is. Idempotent. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.started?.timeline.release();
    this.started?.output.discard();
    await Promise.all([this.media.close(), this.scan?.close()]);
  }

  private async step(closed: boolean): Promise<void> {
    if (this.done) throw new TallenneError('TALLENNE_ENCODE_FAILED', `encoding ${this.job.id}: the encoder was closed`);
    const t0 = threadCpuMicros();
    try {
      if (!this.shifts && this.scan) {
        this.shifts = await this.scan.advance(closed);
        if (this.shifts) this.scan = null;
      }
      if (this.shifts) await this.media.read(this.record);
    } catch (e) {
      await this.abort();
      throw wrap(this.job.id, e);
    } finally {
      this.cpuMicros += threadCpuMicros() - t0;
    }
  }

  private onRecord(r: SpoolRecord): void {
    if (Number.isFinite(r.time) && r.time > this.now) {
      // Time passes first: frames LAG_MS behind this record leave before its packet is
      // placed, so after a long silence (no records at all) the packet still fits the ring.
      this.now = r.time;
      this.emitDue();
    }
    switch (r.type) {
      case RecordType.Meta: {
        const m = parseMeta(r.payload);
        if (!m) break;
        this.meta = m;
        const s = this.started ?? this.start(m);
        for (const d of m.legs) this.ensureLeg(s, d);
        break;
      }
      case RecordType.Rtp: {
        if (!this.started || this.paused || r.time < this.fromMs) break;
        const leg = this.legs.get(r.leg);
        if (leg && readRtpHeader(r.payload, r.payload.length, this.header) === null) leg.onRtp(r.payload, this.header, r.time);
        break;
      }
      case RecordType.Event: {
        const e = parseRecordJson<SpoolEvent>(r.payload);
        if (e?.kind === 'pause' && !this.paused) {
          this.paused = true;
          this.pauses.push([r.time, null]);
          this.started?.timeline.pauseAt(this.posOf(r.time, Math.floor));
        } else if (e?.kind === 'resume' && this.paused) {
          this.paused = false;
          this.pauses[this.pauses.length - 1]![1] = r.time;
          this.started?.timeline.resumeAt(this.posOf(r.time, Math.ceil));
        }
        break;
      }
      case RecordType.End: {
        const e = parseRecordJson<SpoolEnd>(r.payload);
        if (e && Number.isFinite(e.endedAt)) this.end = e;
        break;
      }
      default:
        break;
    }
    this.emitDue();
  }

  /** Flushes idle talk spurts and emits the frames LAG_MS behind the newest record. */
  private emitDue(): void {
    const s = this.started;
    if (!s) return;
    for (const leg of this.legs.values()) if (leg.spurtOpen && this.now - leg.lastArrival > SPURT_IDLE_MS) leg.flushSpurt();
    s.timeline.advance(Math.floor(((this.now - s.origin) * s.outRate) / 1000), s.sink);
  }

  /** Samples since answer of epoch ms `t`. */
  private posOf(t: number, round: (x: number) => number): number {
    const s = this.started!;
    return round((Math.max(0, t - s.origin) * s.outRate) / 1000);
  }

  private start(m: RecordingMeta): Started {
    const job = this.job;
    const outRate = chooseOutputRate(m.legs.flatMap((l) => l.formats ?? []));
    const frameSamples = (outRate * FRAME_MS) / 1000;
    const lagMs = this.opts.lagMs ?? LAG_MS;
    const timeline = new CallTimeline({ sampleRate: outRate, frameSamples, totalFrames: Infinity, lagMs, ringMs: lagMs + JUMP_MS });
    const output = this.opts.output ? this.opts.output(m) : openRecordingOutput(stagingOf(job), job.id, m.answeredAt, job.dataKey);
    const ogg = new OggOpusWriter(output.sink, { channels: 2, channelMapping: 1, inputSampleRate: outRate, preSkip: OPUS_PRE_SKIP_48K, pagePackets: this.opts.pagePackets });
    // The configured bitrate is the file's: each leg's stream gets half of it.
    const legEncoder = (): OpusEncoderHandle => createOpusEncoder({ sampleRate: outRate, channels: 1, bitrate: Math.round(job.bitrate / 2), complexity: job.complexity });
    const frames = new FrameEncoder([legEncoder(), legEncoder()], ogg, job.skipSilence, frameSamples);
    const s: Started = { answeredAt: m.answeredAt, origin: Math.max(m.answeredAt, this.fromMs), outRate, timeline, output, ogg, frames, sink: (frame) => frames.push(frame) };
    this.started = s;
    return s;
  }

  private ensureLeg(s: Started, d: LegDescriptor): void {
    const leg = this.legs.get(d.index);
    if (leg) {
      leg.setDescriptor(d);
      return;
    }
    // The channel of a leg's first META stays: the two sides of a file never swap.
    s.timeline.addLeg(d.index, d.channel === 1 ? 1 : 0);
    const created = new LegPipeline(d, s.timeline, s.outRate, s.origin, this.job.maskDtmf);
    const shift = this.shifts?.get(d.index);
    if (shift) created.placer.alignFirstAnchor(shift.ssrc, shift.shiftMs);
    this.legs.set(d.index, created);
  }

  private complete(): EncodeResult {
    const s = this.started;
    const meta = this.meta;
    if (!s || !meta) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${this.job.spoolPath}: no usable META record`);
    const t0 = threadCpuMicros();
    const { answeredAt, outRate } = s;
    const endedAt = Math.max(answeredAt, this.end ? this.end.endedAt : this.now);
    const durationMs = endedAt - answeredAt;
    const total48k = Math.round(Math.max(0, endedAt - s.origin) * 48);
    // Enough frames to cover the encoder's look-ahead too; the end granule trims the excess.
    s.timeline.endAt(Math.max(1, Math.ceil((total48k + OPUS_PRE_SKIP_48K) / SAMPLES_48K_PER_FRAME)));
    for (const leg of this.legs.values()) leg.finish();
    s.timeline.finish(s.sink);
    s.frames.finish();
    s.ogg.finish(total48k);
    s.timeline.release();
    const staged = s.output.finish();
    this.done = true;
    void this.media.close();

    const pauses: PauseInterval[] = this.pauses.map(([from, to]) => {
      const startMs = Math.max(0, Math.min(durationMs, from - answeredAt));
      const endMs = Math.max(startMs, Math.min(durationMs, (to ?? endedAt) - answeredAt));
      return { startMs: Math.round(startMs), endMs: Math.round(endMs) };
    });
    const legs = [...this.legs.values()].sort((a, b) => a.index - b.index);
    this.cpuMicros += threadCpuMicros() - t0;
    const status: RecordingStatus = this.end ? 'complete' : 'truncated';
    return {
      meta,
      staged,
      answeredAt,
      endedAt,
      durationMs: Math.round(durationMs),
      status,
      endReason: this.end?.reason ?? END_REASON_NO_END_RECORD,
      legs: legs.map((l) => l.stats()),
      pauses,
      dtmf: legs.flatMap((l) => l.dtmf.events).sort((a, b) => a.atMs - b.atMs || a.leg - b.leg),
      sampleRate: outRate,
      channels: 2,
      audioMs: Math.round(total48k / 48),
      encodeCpuMs: Math.round(this.cpuMicros / 1000),
      framesEncoded: s.frames.framesEncoded,
      framesSkipped: s.frames.framesSkipped,
      spoolRecordsRejected: this.media.rejected,
    };
  }
}

function wrap(id: string, e: unknown): TallenneError {
  if (e instanceof TallenneError) return e;
  return new TallenneError('TALLENNE_ENCODE_FAILED', `encoding ${id} failed: ${(e as Error).message}`, { cause: e });
}
