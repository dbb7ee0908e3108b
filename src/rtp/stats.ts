/**
 * Reception statistics of one synchronisation source, as RFC 3550 appendix A describes them:
 * A.1 sequence validation (probation, MAX_DROPOUT, MAX_MISORDER, restart after two packets
 * that agree on a large jump), A.3 expected / lost / fraction lost, A.8 interarrival jitter.
 *
 * Two deliberate refinements, both exact and documented where they happen:
 * - the packets of a successful probation run are counted as received (the RFC's sample code
 *   starts counting with the last of them), so a short stream does not look shorter;
 * - the jitter uses the difference of arrival deltas and timestamp deltas, with the timestamp
 *   delta taken modulo 2^32, so a timestamp wrap does not look like a four-billion-unit jump.
 */
import { ntpMiddle32, type ReportBlock } from './rtcp.js';

export const RTP_SEQ_MOD = 0x1_0000;
export const MAX_DROPOUT = 3000;
export const MAX_MISORDER = 100;
export const MIN_SEQUENTIAL = 2;

/** What update() concluded about a packet's sequence number. */
export type SequenceVerdict = 'valid' | 'probation' | 'bad_jump' | 'restart';

export interface SenderReportInfo {
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  /** Our arrival time of the SR, epoch ms. */
  readonly arrivalMs: number;
}

export class SourceStats {
  readonly ssrc: number;
  private started = false;
  private probation = MIN_SEQUENTIAL;
  private maxSeq = 0;
  /** Sequence wraps seen, times RTP_SEQ_MOD (the RFC's `cycles`). */
  private cycles = 0;
  /** The first counted sequence number, extended (may exceed 65535 after a probation wrap). */
  private baseExt = 0;
  private badSeq = RTP_SEQ_MOD + 1;
  private receivedCount = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  /** Loss counted before a sequence restart, so the leg's total never goes backwards. */
  private carriedLost = 0;
  private carriedReceived = 0;

  private jitterUnits = 0;
  private clockRate = 0;
  private lastArrivalUnits = 0;
  private lastTimestamp = 0;
  private haveTransit = false;

  private sr: SenderReportInfo | null = null;
  /** Epoch ms of the last packet of this source. */
  lastHeardMs = 0;
  /** Packets counted since the last report block was taken. */
  private sinceReport = 0;

  constructor(ssrc: number) {
    this.ssrc = ssrc >>> 0;
  }

  /**
   * Feeds one packet. `clockRate` 0 means "do not use this packet for jitter" (RFC 4733
   * events repeat the timestamp of the event start, which is not a sampling instant).
   */
  update(seq: number, rtpTs: number, arrivalMs: number, clockRate: number): SequenceVerdict {
    seq &= 0xffff;
    this.lastHeardMs = arrivalMs;
    if (!this.started) {
      this.started = true;
      this.maxSeq = (seq - 1) & 0xffff;
      this.probation = MIN_SEQUENTIAL;
    }
    const verdict = this.updateSeq(seq);
    if (verdict === 'bad_jump') return verdict;
    if (verdict === 'restart') this.haveTransit = false;
    if (verdict !== 'probation') this.sinceReport++;
    if (clockRate > 0) this.updateJitter(rtpTs >>> 0, arrivalMs, clockRate);
    return verdict;
  }

  private initSeq(seq: number): void {
    this.baseExt = seq;
    this.maxSeq = seq;
    this.badSeq = RTP_SEQ_MOD + 1;
    this.cycles = 0;
    this.receivedCount = 0;
    this.receivedPrior = 0;
    this.expectedPrior = 0;
  }

  private updateSeq(seq: number): SequenceVerdict {
    const udelta = (seq - this.maxSeq) & 0xffff;
    if (this.probation > 0) {
      if (seq === ((this.maxSeq + 1) & 0xffff)) {
        this.probation--;
        this.maxSeq = seq;
        if (this.probation === 0) {
          // The run was strictly sequential, so its first packet is seq - (MIN_SEQUENTIAL - 1).
          const first = seq - (MIN_SEQUENTIAL - 1);
          this.initSeq(seq);
          if (first < 0) {
            this.cycles = RTP_SEQ_MOD;
            this.baseExt = RTP_SEQ_MOD + first;
          } else {
            this.baseExt = first;
          }
          this.receivedCount = MIN_SEQUENTIAL;
          this.sinceReport += MIN_SEQUENTIAL - 1;
          return 'valid';
        }
      } else {
        this.probation = MIN_SEQUENTIAL - 1;
        this.maxSeq = seq;
      }
      return 'probation';
    }
    if (udelta < MAX_DROPOUT) {
      // In order, possibly with a gap; a smaller number means the 16-bit counter wrapped.
      if (seq < this.maxSeq) this.cycles += RTP_SEQ_MOD;
      this.maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      // A very large jump. Believe it only when the next packet continues from it: then the
      // sender restarted its sequence (RFC 3550 A.1), and counting starts again.
      if (seq !== this.badSeq) {
        this.badSeq = (seq + 1) & 0xffff;
        return 'bad_jump';
      }
      this.carriedLost += Math.max(0, this.expected() - this.receivedCount);
      this.carriedReceived += this.receivedCount;
      this.initSeq(seq);
      // The packet that announced the jump (seq - 1) was real too.
      const first = seq - 1;
      if (first < 0) {
        this.cycles = RTP_SEQ_MOD;
        this.baseExt = RTP_SEQ_MOD + first;
      } else {
        this.baseExt = first;
      }
      this.receivedCount = 2;
      this.sinceReport++;
      return 'restart';
    }
    // Otherwise a duplicate or a late (reordered) packet: counted, max unchanged.
    this.receivedCount++;
    return 'valid';
  }

  private updateJitter(rtpTs: number, arrivalMs: number, clockRate: number): void {
    const arrivalUnits = (arrivalMs * clockRate) / 1000;
    if (!this.haveTransit || clockRate !== this.clockRate) {
      this.haveTransit = true;
      this.clockRate = clockRate;
    } else {
      // D(i-1,i) = (R_i - R_{i-1}) - (S_i - S_{i-1}), A.8; the timestamp delta as signed 32-bit.
      const d = Math.abs(arrivalUnits - this.lastArrivalUnits - ((rtpTs - this.lastTimestamp) | 0));
      this.jitterUnits += (d - this.jitterUnits) / 16;
    }
    this.lastArrivalUnits = arrivalUnits;
    this.lastTimestamp = rtpTs;
  }

  /** The extended highest sequence number received (A.3). */
  get extendedMax(): number {
    return this.cycles + this.maxSeq;
  }

  private expected(): number {
    if (this.probation > 0) return 0;
    return this.extendedMax - this.baseExt + 1;
  }

  /** Packets counted as received, over the whole life of the source (duplicates included). */
  get received(): number {
    return this.carriedReceived + (this.probation > 0 ? 0 : this.receivedCount);
  }

  /** Packets expected but not received; never negative even when duplicates outnumber losses. */
  get lost(): number {
    const current = this.probation > 0 ? 0 : Math.max(0, this.expected() - this.receivedCount);
    return this.carriedLost + current;
  }

  /** Interarrival jitter in RTP timestamp units (A.8). */
  get jitter(): number {
    return this.jitterUnits;
  }

  /** Interarrival jitter in milliseconds, at the clock rate of the last packet used. */
  get jitterMs(): number {
    return this.clockRate > 0 ? (this.jitterUnits * 1000) / this.clockRate : 0;
  }

  /** True once the sequence passed probation. */
  get valid(): boolean {
    return this.started && this.probation === 0;
  }

  /** Packets counted since the last report block; a report only covers sources heard from. */
  get heardSinceReport(): boolean {
    return this.sinceReport > 0;
  }

  get lastSenderReport(): SenderReportInfo | null {
    return this.sr;
  }

  /** Remembers an SR from this source for LSR/DLSR in our next report block. */
  onSenderReport(info: SenderReportInfo): void {
    this.sr = info;
  }

  /**
   * The report block about this source, and the start of the next reporting interval
   * (fraction lost is per interval, A.3).
   */
  reportBlock(nowMs: number): ReportBlock {
    const expected = this.expected();
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.receivedCount - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.receivedCount;
    this.sinceReport = 0;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval === 0 || lostInterval <= 0 ? 0 : Math.floor((lostInterval * 256) / expectedInterval);
    const sr = this.sr;
    return {
      ssrc: this.ssrc,
      fractionLost: Math.min(255, fraction),
      cumulativeLost: expected - this.receivedCount,
      highestSeq: this.extendedMax >>> 0,
      jitter: Math.floor(this.jitterUnits),
      lsr: sr ? ntpMiddle32(sr.ntpSeconds, sr.ntpFraction) : 0,
      dlsr: sr ? Math.max(0, Math.round(((nowMs - sr.arrivalMs) * 65536) / 1000)) : 0,
    };
  }
}
