/**
 * The encoder's first pass over a spool: the small records only (META, EVENT, END, and RTCP
 * sender reports with each leg's first RTP header), for what the media pass must know
 * before it starts: the timeline's bounds, the output rate, the final leg descriptors, the
 * pause intervals and how far sender reports move each leg's first anchor.
 */
import { readSpool } from '../spool/reader.js';
import { RecordType, type SpoolEnd, type SpoolEvent } from '../spool/format.js';
import { TallenneError } from '../errors.js';
import type { MediaFormat, RecordingMeta } from '../types.js';
import { newRtpHeader, readRtpHeader } from '../rtp/packet.js';
import { ntpToEpochMs, parseRtcp } from '../rtp/rtcp.js';
import { isAudioCodec } from './codecs.js';
import { SenderReportAligner } from './timeline.js';

export interface SpoolScan {
  /** The last usable META record: the call's final legs. */
  meta: RecordingMeta;
  /** Every format any META record offered, once per codec and rate. */
  allFormats: MediaFormat[];
  end: SpoolEnd | null;
  /** Latest record time (epoch ms): the end of a spool without END. */
  lastTime: number;
  /** [pauseAt, resumeAt|null] in epoch ms. */
  pauses: Array<[number, number | null]>;
  /** Per leg, how far RTCP sender reports move its first anchor (see SenderReportAligner). */
  srShifts: Map<number, { ssrc: number; shiftMs: number }>;
}

/** A record's JSON payload, or null when it does not parse. */
export function parseRecordJson<T>(payload: Buffer): T | null {
  try {
    return JSON.parse(payload.toString('utf8')) as T;
  } catch {
    return null;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Whether a META payload has the shape the encoder reads: a finite answer time and legs
 * that are objects with a list of format objects. A damaged record can be valid JSON of
 * another shape (a leg of null, formats of a string); it is skipped like unparseable JSON.
 */
export function usableMeta(m: unknown): m is RecordingMeta {
  if (!isObject(m) || !Number.isFinite(m['answeredAt']) || !Array.isArray(m['legs'])) return false;
  return m['legs'].every((leg: unknown) => isObject(leg) && (leg['formats'] === undefined || (Array.isArray(leg['formats']) && leg['formats'].every(isObject))));
}

export async function scanSpool(path: string, key?: Uint8Array): Promise<SpoolScan> {
  let meta: RecordingMeta | null = null;
  const formats = new Map<string, MediaFormat>();
  let end: SpoolEnd | null = null;
  let lastTime = -Infinity;
  const pauses: Array<[number, number | null]> = [];
  const aligner = new SenderReportAligner();
  const clockOf = new Map<string, number>();
  const h = newRtpHeader();
  await readSpool(path, (r) => {
    if (Number.isFinite(r.time) && r.time > lastTime) lastTime = r.time;
    if (r.type === RecordType.Rtp) {
      if (aligner.hasFirstPacket(r.leg) || readRtpHeader(r.payload, r.payload.length, h) !== null) return;
      const clock = clockOf.get(`${r.leg}/${h.payloadType}`);
      if (clock !== undefined) aligner.noteFirstPacket(r.leg, h.ssrc, h.timestamp, r.time, clock);
    } else if (r.type === RecordType.Rtcp) {
      for (const pkt of parseRtcp(r.payload) ?? []) {
        if (pkt.type === 'sr') aligner.noteSenderReport(r.leg, { ssrc: pkt.ssrc, ntpMs: ntpToEpochMs(pkt.ntpSeconds, pkt.ntpFraction), rtpTimestamp: pkt.rtpTimestamp });
      }
    } else if (r.type === RecordType.Meta) {
      const m = parseRecordJson<unknown>(r.payload);
      if (usableMeta(m)) {
        meta = m;
        for (const leg of m.legs) {
          for (const f of leg.formats ?? []) {
            formats.set(`${f.codec}/${f.clockRate}`, f);
            if (isAudioCodec(f.codec)) clockOf.set(`${leg.index}/${f.pt}`, f.clockRate);
          }
        }
      }
    } else if (r.type === RecordType.Event) {
      const e = parseRecordJson<SpoolEvent>(r.payload);
      if (!e) return;
      const open = pauses.length > 0 && pauses[pauses.length - 1]![1] === null;
      if (e.kind === 'pause' && !open) pauses.push([r.time, null]);
      else if (e.kind === 'resume' && open) pauses[pauses.length - 1]![1] = r.time;
    } else if (r.type === RecordType.End) {
      const e = parseRecordJson<SpoolEnd>(r.payload);
      if (e && Number.isFinite(e.endedAt)) end = e;
    }
  }, { key });
  if (!meta) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: no usable META record`);
  return { meta, allFormats: [...formats.values()], end, lastTime, pauses, srShifts: aligner.shifts() };
}
