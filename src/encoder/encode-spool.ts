/**
 * One call's spool → one two-channel Ogg Opus file (customer left, agent right), each leg its
 * own mono Opus stream (RFC 7845 channel mapping family 1).
 *
 * Two passes over the spool, both streaming:
 *   1. a scan of the small records (META, EVENT, END) for the timeline's bounds, the output
 *      rate, the final leg descriptors and the pause intervals;
 *   2. the media pass: each RTP packet is placed by its leg's LegPlacer, decoded, converted
 *      to the output rate and written into the CallTimeline, which hands 20 ms frames to the
 *      Opus encoder and the Ogg writer as arrival time passes them.
 * Memory is bounded by the timeline's rings and one Ogg page, whatever the call's length.
 *
 * The file is written to the AudioStore's temp path and committed (fsync + rename); the
 * spool is left in place for the caller to delete once the index entry is durable.
 */
import { closeSync, openSync, readFileSync, unlinkSync } from 'node:fs';
import { readSpool } from '../spool/reader.js';
import { RecordType, type SpoolEnd, type SpoolEvent } from '../spool/format.js';
import { LocalAudioStore } from '../storage/audio-store.js';
import { TallenneError } from '../errors.js';
import type { CodecName, DtmfEvent, LegDescriptor, LegStats, MediaFormat, PauseInterval, RecordingMeta, RecordingStatus } from '../types.js';
import { chooseOutputRate, createPayloadDecoder, isAudioCodec, PT_COMFORT_NOISE, StreamResampler, type PayloadDecoder } from './codecs.js';
import { CallTimeline, LegPlacer, SenderReportAligner } from './timeline.js';
import { parseRtcp, ntpToEpochMs } from '../rtp/rtcp.js';
import { createOpusEncoder, OPUS_PRE_SKIP_48K, type OpusEncoderHandle } from './opus-native.js';
import { multistreamPacket, OggOpusWriter } from './ogg.js';

export interface EncodeJob {
  spoolPath: string;
  storageDir: string;
  id: string;
  complexity: number;
  bitrate: number;
  skipSilence: boolean;
  maskDtmf: boolean;
}

export interface EncodeResult {
  meta: RecordingMeta;
  /** AudioStore key of the Opus file. */
  file: string;
  fileBytes: number;
  answeredAt: number;
  endedAt: number;
  durationMs: number;
  status: RecordingStatus;
  endReason: string;
  legs: LegStats[];
  pauses: PauseInterval[];
  dtmf: DtmfEvent[];
  sampleRate: number;
  channels: number;
  audioMs: number;
  encodeCpuMs: number;
  framesEncoded: number;
  framesSkipped: number;
}

/** Stored instead of the digit with privacy.mask_dtmf; not '*', which is a real key. */
export const MASKED_DTMF_DIGIT = '*masked*';
/** End reason recorded when the spool has no END record (the daemon died mid-call). */
export const END_REASON_NO_END_RECORD = 'spool-without-end';

const FRAME_MS = 20;
const SAMPLES_48K_PER_FRAME = 960;
/** Silent frames run through the encoder before its silence packet is taken as settled. */
const SILENCE_SETTLE_FRAMES = 3;
/** A talk spurt whose leg has sent nothing for this long is flushed out of its resampler. */
const SPURT_IDLE_MS = 200;
const DTMF_DIGITS = '0123456789*#ABCD';

interface RtpView {
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  payload: Buffer;
}

/** Minimal RTP header parse (RFC 3550 §5.1); null for anything that is not RTP v2. */
function parseRtp(buf: Buffer): RtpView | null {
  if (buf.length < 12 || buf[0]! >> 6 !== 2) return null;
  const cc = buf[0]! & 0x0f;
  let off = 12 + 4 * cc;
  if (buf[0]! & 0x10) {
    if (buf.length < off + 4) return null;
    off += 4 + 4 * buf.readUInt16BE(off + 2);
  }
  let end = buf.length;
  if (buf[0]! & 0x20) {
    const pad = buf[end - 1]!;
    if (pad === 0) return null;
    end -= pad;
  }
  if (off > end) return null;
  return { pt: buf[1]! & 0x7f, seq: buf.readUInt16BE(2), ts: buf.readUInt32BE(4), ssrc: buf.readUInt32BE(8), payload: buf.subarray(off, end) };
}

interface ScanResult {
  meta: RecordingMeta;
  allFormats: MediaFormat[];
  end: SpoolEnd | null;
  lastTime: number;
  /** [pauseAt, resumeAt|null] in epoch ms. */
  pauses: Array<[number, number | null]>;
  /** Per leg, how far RTCP sender reports move its first anchor (see SenderReportAligner). */
  srShifts: Map<number, { ssrc: number; shiftMs: number }>;
}

function parseJson<T>(payload: Buffer): T | null {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    return null;
  }
}

async function scanSpool(path: string): Promise<ScanResult> {
  let meta: RecordingMeta | null = null;
  const formats = new Map<string, MediaFormat>();
  let end: SpoolEnd | null = null;
  let lastTime = -Infinity;
  const pauses: Array<[number, number | null]> = [];
  const aligner = new SenderReportAligner();
  const clockOf = new Map<string, number>();
  await readSpool(path, (r) => {
    if (Number.isFinite(r.time) && r.time > lastTime) lastTime = r.time;
    if (r.type === RecordType.Rtp) {
      const p = parseRtp(r.payload);
      const clock = p ? clockOf.get(`${r.leg}/${p.pt}`) : undefined;
      if (p && clock !== undefined) aligner.noteFirstPacket(r.leg, p.ssrc, p.ts, r.time, clock);
    } else if (r.type === RecordType.Rtcp) {
      for (const pkt of parseRtcp(r.payload) ?? []) {
        if (pkt.type === 'sr') aligner.noteSenderReport(r.leg, { ssrc: pkt.ssrc, ntpMs: ntpToEpochMs(pkt.ntpSeconds, pkt.ntpFraction), rtpTimestamp: pkt.rtpTimestamp });
      }
    } else if (r.type === RecordType.Meta) {
      const m = parseJson<RecordingMeta>(r.payload);
      if (m && Number.isFinite(m.answeredAt) && Array.isArray(m.legs)) {
        meta = m;
        for (const leg of m.legs) {
          for (const f of leg.formats ?? []) {
            formats.set(`${f.codec}/${f.clockRate}`, f);
            if (isAudioCodec(f.codec)) clockOf.set(`${leg.index}/${f.pt}`, f.clockRate);
          }
        }
      }
    } else if (r.type === RecordType.Event) {
      const e = parseJson<SpoolEvent>(r.payload);
      if (!e) return;
      const open = pauses.length > 0 && pauses[pauses.length - 1]![1] === null;
      if (e.kind === 'pause' && !open) pauses.push([r.time, null]);
      else if (e.kind === 'resume' && open) pauses[pauses.length - 1]![1] = r.time;
    } else if (r.type === RecordType.End) {
      const e = parseJson<SpoolEnd>(r.payload);
      if (e && Number.isFinite(e.endedAt)) end = e;
    }
  });
  if (!meta) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: no usable META record`);
  return { meta, allFormats: [...formats.values()], end, lastTime, pauses, srShifts: aligner.shifts() };
}

function audioFormatOf(formats: readonly MediaFormat[]): MediaFormat | undefined {
  return formats.find((f) => isAudioCodec(f.codec));
}

/** One leg's way from packets to timeline samples, and what it learns on the way. */
class LegPipeline {
  readonly index: number;
  descriptor: LegDescriptor;
  readonly placer: LegPlacer;
  private formats = new Map<number, MediaFormat>();
  private decoder: PayloadDecoder | null = null;
  private decoderPt = -1;
  private decoderSsrc = -1;
  private resampler: StreamResampler | null = null;
  private spurtPos = 0;
  private spurtSsrc = -1;
  private expectExtTs = NaN;
  lastArrival = -Infinity;
  codecSeen: CodecName | null = null;
  readonly dtmf: DtmfEvent[] = [];
  private event: { ssrc: number; extTs: number; code: number; pos: number; duration: number; clock: number; done: boolean } | null = null;

  constructor(
    descriptor: LegDescriptor,
    private readonly timeline: CallTimeline,
    private readonly outRate: number,
    answeredAt: number,
    private readonly maskDtmf: boolean,
  ) {
    this.index = descriptor.index;
    this.descriptor = descriptor;
    this.placer = new LegPlacer(outRate, answeredAt);
    this.setDescriptor(descriptor);
  }

  setDescriptor(d: LegDescriptor): void {
    this.descriptor = d;
    this.formats = new Map(d.formats.map((f) => [f.pt, f]));
    const audio = audioFormatOf(d.formats);
    if (audio) this.placer.setClockRate(audio.clockRate);
  }

  get spurtOpen(): boolean {
    return this.resampler !== null && this.spurtSsrc !== -1;
  }

  onRtp(p: RtpView, arrival: number): void {
    const format = this.formats.get(p.pt);
    this.lastArrival = arrival;
    if (p.pt === PT_COMFORT_NOISE || format?.codec === 'CN' || !format) {
      // Comfort noise (and unknown payload types) keep timing and statistics but are silence.
      if (this.placer.place(p.ssrc, p.seq, p.ts, arrival)) this.flushSpurt();
      return;
    }
    if (format.codec === 'TELEPHONE-EVENT') {
      const placed = this.placer.place(p.ssrc, p.seq, p.ts, arrival, false);
      if (placed) this.onTelephoneEvent(p, placed.extTs, placed.pos, format.clockRate);
      return;
    }
    const placed = this.placer.place(p.ssrc, p.seq, p.ts, arrival);
    if (!placed) return;
    if (!this.decoder || this.decoderPt !== p.pt || this.decoderSsrc !== p.ssrc) {
      this.flushSpurt();
      this.decoder = createPayloadDecoder(format, this.outRate);
      this.decoderPt = p.pt;
      this.decoderSsrc = p.ssrc;
    }
    this.codecSeen = format.codec;
    const pcm = this.decoder.decode(p.payload);
    if (pcm.length === 0) return;
    const rate = this.decoder.rate;
    if (rate === this.outRate) {
      this.timeline.write(this.index, placed.pos, pcm);
      return;
    }
    const contiguous = this.resampler !== null && this.resampler.inRate === rate && this.spurtSsrc === p.ssrc && !placed.anchored && placed.extTs === this.expectExtTs;
    if (!contiguous) {
      this.flushSpurt();
      if (!this.resampler || this.resampler.inRate !== rate) this.resampler = new StreamResampler(rate, this.outRate);
      this.spurtPos = placed.pos;
      this.spurtSsrc = p.ssrc;
    }
    const r = this.resampler!;
    const out = r.process(pcm);
    this.timeline.write(this.index, this.spurtPos + r.produced - out.length, out);
    this.expectExtTs = placed.extTs + Math.round((pcm.length * format.clockRate) / rate);
  }

  /** Ends the current talk spurt of a resampled leg: its last samples go out. */
  flushSpurt(): void {
    const r = this.resampler;
    if (!r || this.spurtSsrc === -1) return;
    const at = this.spurtPos + r.produced;
    const out = r.flush();
    this.timeline.write(this.index, at, out);
    this.spurtSsrc = -1;
    this.expectExtTs = NaN;
  }

  /** RFC 4733: one event per start timestamp; end packets are sent three times. */
  private onTelephoneEvent(p: RtpView, extTs: number, pos: number, clock: number): void {
    if (p.payload.length < 4) return;
    const code = p.payload[0]!;
    const isEnd = (p.payload[1]! & 0x80) !== 0;
    const duration = p.payload.readUInt16BE(2);
    const ev = this.event;
    if (ev && ev.ssrc === p.ssrc && ev.extTs === extTs) {
      if (duration > ev.duration) ev.duration = duration;
      if (isEnd && !ev.done) this.finishEvent();
      return;
    }
    if (ev && ev.ssrc === p.ssrc && extTs < ev.extTs) return; // a late packet of an older event
    this.finishEvent();
    this.event = { ssrc: p.ssrc, extTs, code, pos, duration, clock: clock || 8000, done: false };
    if (isEnd) this.finishEvent();
  }

  finishEvent(): void {
    const ev = this.event;
    if (!ev || ev.done) return;
    ev.done = true;
    if (ev.code >= DTMF_DIGITS.length || ev.pos < 0) return;
    this.dtmf.push({
      atMs: Math.round((ev.pos * 1000) / this.outRate),
      durationMs: Math.round((ev.duration * 1000) / ev.clock),
      digit: this.maskDtmf ? MASKED_DTMF_DIGIT : DTMF_DIGITS[ev.code]!,
      leg: this.index,
    });
  }

  stats(): LegStats {
    const s = this.placer.stats();
    const codec = this.codecSeen ?? audioFormatOf(this.descriptor.formats)?.codec ?? 'none';
    return {
      index: this.index,
      ...(this.descriptor.label !== undefined ? { label: this.descriptor.label } : {}),
      role: this.descriptor.role,
      codec,
      packets: s.packets,
      lost: s.lost,
      ssrcs: s.ssrcs,
      jitterMs: Math.round(s.jitterMs * 100) / 100,
    };
  }
}

/**
 * Energy under which a 20 ms frame of one leg counts as silence: an RMS of 64 (-54 dBFS), well
 * below soft speech (about -45 dBFS) and above the idle noise of a telephone line.
 */
const SILENCE_RMS = 64;
/** Quiet frames a leg must have in a row before it is gated: speech tails are not cut. */
const SILENCE_HANGOVER_FRAMES = 10;

/**
 * One leg's mono Opus stream. With skipSilence, a leg that has been quiet for the hangover
 * (energy under SILENCE_RMS, which covers no packets, comfort noise and digital silence) and
 * stays quiet in the next frame too (one frame of look-ahead, so an onset is never gated)
 * is fed digital silence; once the encoder's packet for silence has settled, that packet is
 * reused instead of running the encoder. The decoder then is exactly where the encoder is,
 * so speech after the silence starts without a click.
 */
class ChannelEncoder {
  framesEncoded = 0;
  framesSkipped = 0;
  private settled: Buffer | null = null;
  private lastSilent: Buffer | null = null;
  private silentRun = 0;
  private quietRun = 0;
  private readonly zeros: Buffer;

  constructor(
    private readonly encoder: OpusEncoderHandle,
    private readonly skipSilence: boolean,
    frameSamples: number,
  ) {
    this.zeros = Buffer.alloc(frameSamples * 2);
  }

  /** Updates the quiet run with this frame's energy (called one frame ahead of encode). */
  observe(pcm: Int16Array): boolean {
    let energy = 0;
    for (let i = 0; i < pcm.length; i++) energy += pcm[i]! * pcm[i]!;
    const quiet = energy < SILENCE_RMS * SILENCE_RMS * pcm.length;
    this.quietRun = quiet ? this.quietRun + 1 : 0;
    return quiet;
  }

  /** `quietRunAtFrame`: the quiet run as it was after observing this frame; `nextQuiet`: the next frame's. */
  encode(pcm: Int16Array, quietRunAtFrame: number, nextQuiet: boolean): Buffer {
    const gated = this.skipSilence && quietRunAtFrame > SILENCE_HANGOVER_FRAMES && nextQuiet;
    if (!gated) {
      this.settled = null;
      this.lastSilent = null;
      this.silentRun = 0;
      this.framesEncoded++;
      return this.encoder.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
    }
    if (this.settled) {
      this.framesSkipped++;
      return this.settled;
    }
    const packet = this.encoder.encode(this.zeros);
    this.framesEncoded++;
    this.silentRun++;
    if (this.silentRun >= SILENCE_SETTLE_FRAMES && this.lastSilent && packet.equals(this.lastSilent)) this.settled = packet;
    this.lastSilent = packet;
    return packet;
  }

  get quiet(): number {
    return this.quietRun;
  }
}

/**
 * Takes the timeline's 20 ms stereo frames, splits them into the two legs' channels and
 * writes one multistream Ogg packet per frame (two uncoupled mono streams, customer left,
 * agent right). Two mono streams instead of one stereo stream: libopus costs the same for
 * both when both legs speak, but a silent leg can then be skipped on its own, and in a call
 * one side mostly listens; the sides also cannot leak into each other through joint coding.
 * Frames are held back one frame so the silence gate can look ahead.
 */
class FrameEncoder {
  private readonly channels: [ChannelEncoder, ChannelEncoder];
  private readonly pending: [Int16Array, Int16Array];
  private readonly current: [Int16Array, Int16Array];
  private hasPending = false;
  private pendingQuietRun: [number, number] = [0, 0];

  constructor(
    encoders: [OpusEncoderHandle, OpusEncoderHandle],
    private readonly ogg: OggOpusWriter,
    skipSilence: boolean,
    frameSamples: number,
  ) {
    this.channels = [new ChannelEncoder(encoders[0], skipSilence, frameSamples), new ChannelEncoder(encoders[1], skipSilence, frameSamples)];
    this.pending = [new Int16Array(frameSamples), new Int16Array(frameSamples)];
    this.current = [new Int16Array(frameSamples), new Int16Array(frameSamples)];
  }

  get framesEncoded(): number {
    return this.channels[0].framesEncoded + this.channels[1].framesEncoded;
  }

  get framesSkipped(): number {
    return this.channels[0].framesSkipped + this.channels[1].framesSkipped;
  }

  push(frame: Int16Array): void {
    const [l, r] = this.current;
    for (let i = 0, j = 0; i < l.length; i++, j += 2) {
      l[i] = frame[j]!;
      r[i] = frame[j + 1]!;
    }
    const q0 = this.channels[0].observe(l);
    const q1 = this.channels[1].observe(r);
    if (this.hasPending) this.emit(q0, q1);
    this.pending[0].set(l);
    this.pending[1].set(r);
    this.pendingQuietRun = [this.channels[0].quiet, this.channels[1].quiet];
    this.hasPending = true;
  }

  /** Encodes the frame held back; at the end there is no next frame, so it counts as sound. */
  finish(): void {
    if (this.hasPending) this.emit(false, false);
    this.hasPending = false;
  }

  private emit(nextQuiet0: boolean, nextQuiet1: boolean): void {
    const a = this.channels[0].encode(this.pending[0], this.pendingQuietRun[0], nextQuiet0);
    const b = this.channels[1].encode(this.pending[1], this.pendingQuietRun[1], nextQuiet1);
    this.ogg.writePacket(multistreamPacket([a, b]), SAMPLES_48K_PER_FRAME);
  }
}

/**
 * CPU time of this thread in microseconds. Node 20 has no process.threadCpuUsage, and
 * process.cpuUsage counts every thread, capture included, so on Linux the thread's own
 * utime + stime are read from /proc/thread-self/stat (clock ticks of 10 ms: fine for a
 * recording's encode, which takes tens of ms or more).
 */
function cpuMicros(): number {
  const p = process as unknown as { threadCpuUsage?: () => NodeJS.CpuUsage };
  if (typeof p.threadCpuUsage === 'function') {
    const u = p.threadCpuUsage();
    return u.user + u.system;
  }
  try {
    const stat = readFileSync('/proc/thread-self/stat', 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
  } catch {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

export async function encodeSpool(job: EncodeJob): Promise<EncodeResult> {
  const cpuStart = cpuMicros();
  const scan = await scanSpool(job.spoolPath);
  const meta = scan.meta;
  const answeredAt = meta.answeredAt;
  const endedAt = Math.max(answeredAt, scan.end ? scan.end.endedAt : scan.lastTime);
  const truncated = scan.end === null;
  const status: RecordingStatus = truncated ? 'truncated' : 'complete';
  const endReason = scan.end?.reason ?? END_REASON_NO_END_RECORD;
  const durationMs = endedAt - answeredAt;

  const outRate = chooseOutputRate(scan.allFormats);
  const frameSamples = (outRate * FRAME_MS) / 1000;
  const total48k = Math.round(durationMs * 48);
  // Enough frames to cover the encoder's look-ahead too; the end granule trims the excess.
  const totalFrames = Math.max(1, Math.ceil((total48k + OPUS_PRE_SKIP_48K) / SAMPLES_48K_PER_FRAME));

  const pauses: PauseInterval[] = [];
  const silenced: Array<[number, number]> = [];
  for (const [from, to] of scan.pauses) {
    const startMs = Math.max(0, Math.min(durationMs, from - answeredAt));
    const endMs = Math.max(startMs, Math.min(durationMs, (to ?? endedAt) - answeredAt));
    pauses.push({ startMs: Math.round(startMs), endMs: Math.round(endMs) });
    silenced.push([Math.floor((startMs * outRate) / 1000), Math.ceil((endMs * outRate) / 1000)]);
  }
  const inPause = (t: number): boolean => scan.pauses.some(([from, to]) => t >= from && (to === null || t < to));

  const timeline = new CallTimeline({ sampleRate: outRate, frameSamples, totalFrames, silenced });
  const legs = new Map<number, LegPipeline>();
  const channelOf = new Map<number, 0 | 1>(meta.legs.map((l) => [l.index, l.channel === 1 ? 1 : 0]));
  const ensureLeg = (d: LegDescriptor): LegPipeline => {
    let leg = legs.get(d.index);
    if (!leg) {
      // Channel by role from the final metadata, so an early META cannot swap sides.
      timeline.addLeg(d.index, channelOf.get(d.index) ?? (d.channel === 1 ? 1 : 0));
      leg = new LegPipeline(d, timeline, outRate, answeredAt, job.maskDtmf);
      const shift = scan.srShifts.get(d.index);
      if (shift) leg.placer.alignFirstAnchor(shift.ssrc, shift.shiftMs);
      legs.set(d.index, leg);
    } else leg.setDescriptor(d);
    return leg;
  };

  const store = new LocalAudioStore(job.storageDir);
  const key = store.keyFor(job.id, answeredAt);
  const temp = store.tempPathFor(key);
  const fd = openSync(temp, 'w', 0o640);
  let fdOpen = true;
  try {
    const ogg = new OggOpusWriter(fd, { channels: 2, channelMapping: 1, inputSampleRate: outRate, preSkip: OPUS_PRE_SKIP_48K });
    // The configured bitrate is the file's: each leg's stream gets half of it.
    const legEncoder = (): OpusEncoderHandle => createOpusEncoder({ sampleRate: outRate, channels: 1, bitrate: Math.round(job.bitrate / 2), complexity: job.complexity });
    const frames = new FrameEncoder([legEncoder(), legEncoder()], ogg, job.skipSilence, frameSamples);
    const sink = (frame: Int16Array): void => frames.push(frame);

    let now = -Infinity;
    let metaSeen = false;
    await readSpool(job.spoolPath, (r) => {
      if (Number.isFinite(r.time) && r.time > now) now = r.time;
      switch (r.type) {
        case RecordType.Meta: {
          const m = parseJson<RecordingMeta>(r.payload);
          if (m && Array.isArray(m.legs)) {
            metaSeen = true;
            for (const d of m.legs) ensureLeg(d);
          }
          break;
        }
        case RecordType.Rtp: {
          if (!metaSeen) break;
          const leg = legs.get(r.leg);
          if (!leg || inPause(r.time)) break;
          const p = parseRtp(r.payload);
          if (p) leg.onRtp(p, r.time);
          break;
        }
        default:
          break;
      }
      for (const leg of legs.values()) if (leg.spurtOpen && now - leg.lastArrival > SPURT_IDLE_MS) leg.flushSpurt();
      timeline.advance(Math.floor(((now - answeredAt) * outRate) / 1000), sink);
    });
    for (const leg of legs.values()) {
      leg.flushSpurt();
      leg.finishEvent();
    }
    timeline.finish(sink);
    frames.finish();
    ogg.finish(total48k);
    closeSync(fd);
    fdOpen = false;
    const fileBytes = store.commit(temp, key);

    for (const d of meta.legs) ensureLeg(d);
    const legStats = [...legs.values()].sort((a, b) => a.index - b.index).map((l) => l.stats());
    const dtmf = [...legs.values()].flatMap((l) => l.dtmf).sort((a, b) => a.atMs - b.atMs || a.leg - b.leg);
    return {
      meta,
      file: key,
      fileBytes,
      answeredAt,
      endedAt,
      durationMs: Math.round(durationMs),
      status,
      endReason,
      legs: legStats,
      pauses,
      dtmf,
      sampleRate: outRate,
      channels: 2,
      audioMs: Math.round(total48k / 48),
      encodeCpuMs: Math.round((cpuMicros() - cpuStart) / 1000),
      framesEncoded: frames.framesEncoded,
      framesSkipped: frames.framesSkipped,
    };
  } catch (e) {
    if (fdOpen) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // Already gone (or committed): nothing to clean.
    }
    if (e instanceof TallenneError) throw e;
    throw new TallenneError('TALLENNE_ENCODE_FAILED', `encoding ${job.id} failed: ${(e as Error).message}`, { cause: e });
  }
}
