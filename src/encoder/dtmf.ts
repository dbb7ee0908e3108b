/**
 * RFC 4733 telephone-events of one leg, turned into the DTMF digits a recording stores.
 *
 * An event is known by its source and its RTP timestamp (the event's start), which every
 * packet of the event repeats while the duration field grows; the end bit closes it, and the
 * end packet is sent three times. So: a packet with the current event's timestamp updates it,
 * a later timestamp starts the next event (closing the current one even if its end packets
 * were all lost), and an earlier timestamp is a late packet of an older event and is ignored.
 * Events 0-15 are the DTMF keys; other events (tones, line signals) are not digits.
 */
import type { DtmfEvent } from '../types.js';

/** Stored instead of the digit with privacy.mask_dtmf; not '*', which is a real key. */
export const MASKED_DTMF_DIGIT = '*masked*';
/** RFC 4733 §3.2 event codes 0-15, in order. */
const DTMF_DIGITS = '0123456789*#ABCD';
/** event (8 bits), E R volume (8 bits), duration (16 bits). */
const EVENT_PAYLOAD_BYTES = 4;
/** RTP clock assumed for an event format without one (RFC 4733 §2.1: 8000 by default). */
const DEFAULT_EVENT_CLOCK = 8000;

export class DtmfCollector {
  /** Digits in the order their events ended. */
  readonly events: DtmfEvent[] = [];
  /** An event has been seen (the last one, kept after it ends to absorb its repeated end packets). */
  private known = false;
  /** The last event has been stored. */
  private done = true;
  private ssrc = 0;
  private startTs = 0;
  private code = 0;
  private pos = 0;
  private duration = 0;
  private clock = DEFAULT_EVENT_CLOCK;

  /**
   * `leg` names the leg in the events; `timelineRate` converts timeline positions to ms;
   * with `mask` every digit is stored as MASKED_DTMF_DIGIT.
   */
  constructor(
    private readonly leg: number,
    private readonly timelineRate: number,
    private readonly mask: boolean,
  ) {}

  /**
   * One telephone-event packet: its payload, its source, its timestamp extended past
   * wrap-around, where that timestamp lies on the timeline, and the format's RTP clock.
   */
  onPacket(payload: Buffer, ssrc: number, extTs: number, pos: number, clockRate: number): void {
    if (payload.length < EVENT_PAYLOAD_BYTES) return;
    const code = payload[0]!;
    const isEnd = (payload[1]! & 0x80) !== 0;
    const duration = payload.readUInt16BE(2);
    if (this.known && this.ssrc === ssrc) {
      if (extTs === this.startTs) {
        if (duration > this.duration) this.duration = duration;
        if (isEnd) this.finish();
        return;
      }
      if (extTs < this.startTs) return;
    }
    this.finish();
    this.known = true;
    this.done = false;
    this.ssrc = ssrc;
    this.startTs = extTs;
    this.code = code;
    this.pos = pos;
    this.duration = duration;
    this.clock = clockRate > 0 ? clockRate : DEFAULT_EVENT_CLOCK;
    if (isEnd) this.finish();
  }

  /** Closes the current event (its end packets may all have been lost): at the end of the call. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    if (this.code >= DTMF_DIGITS.length || this.pos < 0) return;
    this.events.push({
      atMs: Math.round((this.pos * 1000) / this.timelineRate),
      durationMs: Math.round((this.duration * 1000) / this.clock),
      digit: this.mask ? MASKED_DTMF_DIGIT : DTMF_DIGITS[this.code]!,
      leg: this.leg,
    });
  }
}
