/**
 * The look-ahead at a call's start: RTCP sender reports tie each leg's RTP clock to the
 * sender's wall clock, and they must be known before a leg's first packet is placed (its
 * anchor stays for the whole call). StartScan reads the spool ahead of the media pass, only
 * the small records (META, and RTCP sender reports with each leg's first RTP header), until
 * the alignment can be decided:
 *   - every leg of the latest META has sent its first packet and a sender report, or
 *   - the spool reaches SR_HOLD_MS of call time (a leg that sends no SR by then is placed by
 *     arrival, as without SRs), or
 *   - the spool is closed.
 * The media pass waits for that decision, so at a call's start the encoder is up to
 * SR_HOLD_MS + LAG_MS behind; it catches up at once after. The decision depends only on the
 * records, not on when they were read, so the live encoder and the whole-spool encode of
 * the same spool decide alike.
 */
import { SpoolFollower, type SpoolRecord } from '../spool/follower.js';
import { RecordType } from '../spool/format.js';
import type { RecordingMeta } from '../types.js';
import { newRtpHeader, readRtpHeader } from '../rtp/packet.js';
import { ntpToEpochMs, parseRtcp } from '../rtp/rtcp.js';
import { isAudioCodec } from './codecs.js';
import { SenderReportAligner } from './timeline.js';

/** How long into the call (record time) the media pass waits for the legs' first sender reports. */
export const SR_HOLD_MS = 3000;

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

/** A META record's RecordingMeta when it is usable (an answer time and legs). */
export function parseMeta(payload: Buffer): RecordingMeta | null {
  const m = parseRecordJson<unknown>(payload);
  return usableMeta(m) ? m : null;
}

export type AnchorShifts = Map<number, { ssrc: number; shiftMs: number }>;

export class StartScan {
  private readonly follower: SpoolFollower;
  private readonly aligner = new SenderReportAligner();
  private readonly clockOf = new Map<string, number>();
  private readonly header = newRtpHeader();
  private meta: RecordingMeta | null = null;
  private decidedShifts: AnchorShifts | null = null;

  /** `blockingReads`: see SpoolFollowerOptions (an encoder thread's scan). */
  constructor(path: string, key?: Uint8Array, blockingReads = false) {
    this.follower = new SpoolFollower(path, { key, blockingReads });
  }

  /** The call's answer time (epoch ms), once a META record is read. */
  get answeredAt(): number | null {
    return this.meta?.answeredAt ?? null;
  }

  /** Per leg, how far its first anchor moves; null while still waiting. */
  get shifts(): AnchorShifts | null {
    return this.decidedShifts;
  }

  /**
   * Reads what the spool holds now. `closed`: the spool will not grow, so whatever was
   * found is the decision. Returns the shifts once decided.
   */
  async advance(closed: boolean): Promise<AnchorShifts | null> {
    if (this.decidedShifts) return this.decidedShifts;
    await this.follower.read((r) => this.onRecord(r));
    if (!this.decidedShifts && (closed || this.follower.ended || this.follower.damaged)) this.decide();
    if (this.decidedShifts) await this.follower.close();
    return this.decidedShifts;
  }

  async close(): Promise<void> {
    await this.follower.close();
  }

  /** The read buffer held while the scan lasts. */
  get bufferBytes(): number {
    return this.follower.bufferBytes;
  }

  /** false stops the read: the decision is made. */
  private onRecord(r: SpoolRecord): boolean {
    if (this.meta && r.time >= this.meta.answeredAt + SR_HOLD_MS) {
      this.decide();
      return false;
    }
    if (r.type === RecordType.Rtp) {
      const h = this.header;
      if (this.aligner.hasFirstPacket(r.leg) || readRtpHeader(r.payload, r.payload.length, h) !== null) return true;
      const clock = this.clockOf.get(`${r.leg}/${h.payloadType}`);
      if (clock !== undefined) this.aligner.noteFirstPacket(r.leg, h.ssrc, h.timestamp, r.time, clock);
    } else if (r.type === RecordType.Rtcp) {
      for (const pkt of parseRtcp(r.payload) ?? []) {
        if (pkt.type === 'sr') this.aligner.noteSenderReport(r.leg, { ssrc: pkt.ssrc, ntpMs: ntpToEpochMs(pkt.ntpSeconds, pkt.ntpFraction), rtpTimestamp: pkt.rtpTimestamp });
      }
    } else if (r.type === RecordType.Meta) {
      const m = parseMeta(r.payload);
      if (m) {
        this.meta = m;
        for (const leg of m.legs) for (const f of leg.formats ?? []) if (isAudioCodec(f.codec)) this.clockOf.set(`${leg.index}/${f.pt}`, f.clockRate);
      }
    }
    const legs = this.meta?.legs ?? [];
    if (legs.length > 0 && legs.every((l) => this.aligner.hasFirstPacket(l.index) && this.aligner.hasSenderReport(l.index))) {
      this.decide();
      return false;
    }
    return true;
  }

  private decide(): void {
    this.decidedShifts ??= this.aligner.shifts();
  }
}
