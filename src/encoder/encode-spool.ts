/**
 * One call's spool → one two-channel Ogg Opus file (customer left, agent right), each leg its
 * own mono Opus stream (RFC 7845 channel mapping family 1).
 *
 * Two passes over the spool, both streaming:
 *   1. scanSpool (spool-scan.ts) reads the small records for the timeline's bounds, the
 *      output rate, the final leg descriptors and the pause intervals;
 *   2. the media pass: each RTP packet's header is read (src/rtp/packet.ts) and handed to its
 *      leg's LegPipeline (leg-pipeline.ts: statistics, placement, decoding, DTMF), which
 *      writes samples into the CallTimeline; the timeline hands 20 ms frames to the
 *      FrameEncoder (frame-encoder.ts: silence gate, Opus, multistream Ogg) as arrival time
 *      passes them.
 * Memory is bounded by the timeline's rings and one Ogg page, whatever the call's length.
 *
 * The file is written to the AudioStore's temp path and committed (fsync + rename); the
 * spool is left in place for the caller to delete once the index entry is durable.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { readSpool, type SpoolRecord } from '../spool/reader.js';
import { RecordType } from '../spool/format.js';
import { LocalAudioStore } from '../storage/audio-store.js';
import { TallenneError } from '../errors.js';
import type { DtmfEvent, LegDescriptor, LegStats, PauseInterval, RecordingMeta, RecordingStatus } from '../types.js';
import { newRtpHeader, readRtpHeader } from '../rtp/packet.js';
import { chooseOutputRate } from './codecs.js';
import { CallTimeline } from './timeline.js';
import { createOpusEncoder, OPUS_PRE_SKIP_48K, type OpusEncoderHandle } from './opus-native.js';
import { OggOpusWriter } from './ogg.js';
import { FrameEncoder, SAMPLES_48K_PER_FRAME } from './frame-encoder.js';
import { LegPipeline } from './leg-pipeline.js';
import { parseRecordJson, scanSpool } from './spool-scan.js';
import { threadCpuMicros } from './cpu-time.js';
import { Stage, stageTimed } from '../stage-clock.js';

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

/** End reason recorded when the spool has no END record (the daemon died mid-call). */
export const END_REASON_NO_END_RECORD = 'spool-without-end';

const FRAME_MS = 20;
/** A talk spurt whose leg has sent nothing for this long is flushed out of its resampler. */
const SPURT_IDLE_MS = 200;

export async function encodeSpool(job: EncodeJob): Promise<EncodeResult> {
  const cpuStart = threadCpuMicros();
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
  const pauseList = scan.pauses;
  const inPause = (t: number): boolean => {
    for (const [from, to] of pauseList) if (t >= from && (to === null || t < to)) return true;
    return false;
  };

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
    const header = newRtpHeader();
    await readSpool(job.spoolPath, stageTimed(Stage.encoderRecord, (r: SpoolRecord) => {
      if (Number.isFinite(r.time) && r.time > now) now = r.time;
      switch (r.type) {
        case RecordType.Meta: {
          const m = parseRecordJson<RecordingMeta>(r.payload);
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
          if (readRtpHeader(r.payload, r.payload.length, header) === null) leg.onRtp(r.payload, header, r.time);
          break;
        }
        default:
          break;
      }
      for (const leg of legs.values()) if (leg.spurtOpen && now - leg.lastArrival > SPURT_IDLE_MS) leg.flushSpurt();
      timeline.advance(Math.floor(((now - answeredAt) * outRate) / 1000), sink);
    }));
    for (const leg of legs.values()) leg.finish();
    timeline.finish(sink);
    frames.finish();
    ogg.finish(total48k);
    closeSync(fd);
    fdOpen = false;
    const fileBytes = store.commit(temp, key);

    for (const d of meta.legs) ensureLeg(d);
    const legStats = [...legs.values()].sort((a, b) => a.index - b.index).map((l) => l.stats());
    const dtmf = [...legs.values()].flatMap((l) => l.dtmf.events).sort((a, b) => a.atMs - b.atMs || a.leg - b.leg);
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
      encodeCpuMs: Math.round((threadCpuMicros() - cpuStart) / 1000),
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
