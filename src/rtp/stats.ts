/**
 * Reception statistics of one synchronisation source, as RFC 3550 appendix A describes them:
 * A.1 sequence validation (probation, MAX_DROPOUT, MAX_MISORDER, restart after two packets
 * that agree on a large jump), A.3 expected / lost / fraction lost, A.8 interarrival jitter.
 *
 * Three deliberate refinements, each exact and documented where it happens:
 * - the packets of a successful probation run are counted as received (the RFC's sample code
 *   starts counting with the last of them), so a short stream does not look shorter;
 * - the jitter uses the difference of arrival deltas and timestamp deltas, with the timestamp
 *   delta taken modulo 2^32, so a timestamp wrap does not look like a four-billion-unit jump;
 * - duplicates are recognised (a window of the last DUPLICATE_WINDOW sequence numbers, wider
 *   than MAX_MISORDER): they still count as received in report blocks, as §6.4.1 says, but
 *   not in `lost`, so a duplicated packet cannot hide a lost one, and not in the jitter.
 *
 * SourceStats is one SSRC; LegReception is one leg's sources. Both the receiver (live figures,
 * RTCP reports, metrics) and the encoder (the leg statistics stored with a recording, from the
 * spool's packets and their arrival times) count with them, so the two agree by construction.
 * Nothing here allocates per packet.
 */
import type { MediaFormat } from '../types.js';
import { ntpMiddle32, type ReportBlock } from './rtcp.js';

export const RTP_SEQ_MOD = 0x1_0000;
export const MAX_DROPOUT = 3000;
export const MAX_MISORDER = 100;
export const MIN_SEQUENTIAL = 2;
/** Sequence numbers remembered for duplicate detection: a power of two above MAX_MISORDER. */
export const DUPLICATE_WINDOW = 128;
/** SSRCs tracked at once per leg; a peer spraying random SSRCs cannot grow memory past this. */
export const MAX_SOURCES_PER_LEG = 16;

/** What update() concluded about a packet's sequence number. */
export type SequenceVerdict = 'valid' | 'probation' | 'bad_jump' | 'restart' | 'duplicate';

export interface SenderReportInfo {
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  /** Our arrival time of the SR, epoch ms. */
  readonly arrivalMs: number;
}

/**
 * The clock rate a packet of `format` feeds the jitter with: 0 for RFC 4733 events, which
 * repeat the event's start timestamp across packets, so it is not a sampling instant.
 */
export function jitterClockRate(format: MediaFormat): number {
  return format.codec === 'TELEPHONE-EVENT' ? 0 : format.clockRate;
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
  /** Packets received in the current sequence run, duplicates included (the RFC's `received`). */
  private receivedCount = 0;
  /** Of those, duplicates. */
  private duplicateCount = 0;
  /** One bit per extended sequence number, modulo DUPLICATE_WINDOW, up to extendedMax. */
  private readonly seen = new Uint32Array(DUPLICATE_WINDOW / 32);
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
    if (verdict !== 'probation') this.sinceReport++;
    if (verdict === 'duplicate') return verdict;
    if (verdict === 'restart') this.haveTransit = false;
    if (clockRate > 0) this.updateJitter(rtpTs >>> 0, arrivalMs, clockRate);
    return verdict;
  }

  private initSeq(seq: number): void {
    this.baseExt = seq;
    this.maxSeq = seq;
    this.badSeq = RTP_SEQ_MOD + 1;
    this.cycles = 0;
    this.receivedCount = 0;
    this.duplicateCount = 0;
    this.receivedPrior = 0;
    this.expectedPrior = 0;
    this.seen.fill(0);
  }

  private wasSeen(ext: number): boolean {
    return (this.seen[(ext & (DUPLICATE_WINDOW - 1)) >>> 5]! & (1 << (ext & 31))) !== 0;
  }

  private markSeen(ext: number): void {
    this.seen[(ext & (DUPLICATE_WINDOW - 1)) >>> 5]! |= 1 << (ext & 31);
  }

  /** The highest number moves from `from` to `to`: the numbers skipped are not seen (yet). */
  private advanceSeen(from: number, to: number): void {
    if (to - from >= DUPLICATE_WINDOW) {
      this.seen.fill(0);
    } else {
      for (let e = from + 1; e < to; e++) this.seen[(e & (DUPLICATE_WINDOW - 1)) >>> 5]! &= ~(1 << (e & 31));
    }
    this.markSeen(to);
  }

  /** A new sequence run starts with `count` consecutive packets up to extendedMax. */
  private seedSeen(count: number): void {
    this.seen.fill(0);
    for (let k = 0; k < count; k++) this.markSeen(this.extendedMax - k);
  }

  private updateSeq(seq: number): SequenceVerdict {
    const udelta = (seq - this.maxSeq) & 0xffff;
    if (this.probation > 0) {
      // maxSeq is the last probation packet: the same number again is its duplicate, which
      // must not reset the run (nothing is counted during probation, so neither is it).
      if (seq === this.maxSeq) return 'duplicate';
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
          this.seedSeen(MIN_SEQUENTIAL);
          this.sinceReport += MIN_SEQUENTIAL - 1;
          return 'valid';
        }
      } else {
        this.probation = MIN_SEQUENTIAL - 1;
        this.maxSeq = seq;
      }
      return 'probation';
    }
    if (udelta === 0) return this.duplicate();
    if (udelta < MAX_DROPOUT) {
      // In order, possibly with a gap; a smaller number means the 16-bit counter wrapped.
      const before = this.extendedMax;
      if (seq < this.maxSeq) this.cycles += RTP_SEQ_MOD;
      this.maxSeq = seq;
      this.advanceSeen(before, this.extendedMax);
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      // A very large jump. Believe it only when the next packet continues from it: then the
      // sender restarted its sequence (RFC 3550 A.1), and counting starts again.
      if (seq !== this.badSeq) {
        this.badSeq = (seq + 1) & 0xffff;
        return 'bad_jump';
      }
      this.carriedLost += this.currentLost();
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
      this.seedSeen(2);
      this.sinceReport++;
      return 'restart';
    } else {
      // Late (reordered) or a duplicate: at most MAX_MISORDER behind, so inside the window.
      const ext = this.extendedMax - (RTP_SEQ_MOD - udelta);
      if (this.wasSeen(ext)) return this.duplicate();
      this.markSeen(ext);
      // Reordered before the first packet counted: the run started earlier than we thought.
      if (ext < this.baseExt) this.baseExt = ext;
    }
    this.receivedCount++;
    return 'valid';
  }

  private duplicate(): SequenceVerdict {
    this.receivedCount++;
    this.duplicateCount++;
    return 'duplicate';
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

  /** Packets expected but never received: duplicates do not make up for a lost packet. */
  get lost(): number {
    return this.carriedLost + (this.probation > 0 ? 0 : this.currentLost());
  }

  private currentLost(): number {
    return Math.max(0, this.expected() - (this.receivedCount - this.duplicateCount));
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

/**
 * One leg's reception: its sources (the current one, and up to MAX_SOURCES_PER_LEG tracked at
 * once, the least recently heard forgotten first), and the figures a recording keeps about
 * the leg. A source that is forgotten keeps its loss in the leg's total.
 */
export class LegReception {
  private readonly sources = new Map<number, SourceStats>();
  private currentSource: SourceStats | null = null;
  private readonly maxSources: number;
  private ssrcsSeen = 0;
  private forgottenLost = 0;
  private uniquePackets = 0;
  private jitterSumMs = 0;
  private jitterSamples = 0;

  constructor(maxSources = MAX_SOURCES_PER_LEG) {
    this.maxSources = Math.max(1, maxSources);
  }

  /**
   * Feeds one packet of `ssrc`; `clockRate` as for SourceStats.update (0: not a sampling
   * instant, e.g. an RFC 4733 event).
   */
  update(ssrc: number, seq: number, rtpTs: number, arrivalMs: number, clockRate: number): SequenceVerdict {
    let src = this.currentSource;
    if (src === null || src.ssrc !== ssrc >>> 0) src = this.switchTo(ssrc >>> 0);
    const verdict = src.update(seq, rtpTs, arrivalMs, clockRate);
    if (verdict === 'duplicate') return verdict;
    this.uniquePackets++;
    if (clockRate > 0 && verdict !== 'bad_jump') {
      this.jitterSumMs += src.jitterMs;
      this.jitterSamples++;
    }
    return verdict;
  }

  private switchTo(ssrc: number): SourceStats {
    let src = this.sources.get(ssrc);
    if (src === undefined) {
      if (this.sources.size >= this.maxSources) this.forgetLeastRecent();
      src = new SourceStats(ssrc);
      this.sources.set(ssrc, src);
      this.ssrcsSeen++;
    }
    this.currentSource = src;
    return src;
  }

  private forgetLeastRecent(): void {
    let oldest: SourceStats | null = null;
    for (const s of this.sources.values()) if (oldest === null || s.lastHeardMs < oldest.lastHeardMs) oldest = s;
    if (oldest === null) return;
    this.forgottenLost += oldest.lost;
    this.sources.delete(oldest.ssrc);
  }

  /** The source of the last packet, or null before the first. */
  get current(): SourceStats | null {
    return this.currentSource;
  }

  /** Statistics of one SSRC, while it is tracked. */
  source(ssrc: number): SourceStats | undefined {
    return this.sources.get(ssrc >>> 0);
  }

  /** The sources tracked now. */
  tracked(): IterableIterator<SourceStats> {
    return this.sources.values();
  }

  /** Packets received, duplicates not counted. */
  get packets(): number {
    return this.uniquePackets;
  }

  /** Distinct SSRCs seen (one that comes back after being forgotten counts again). */
  get ssrcs(): number {
    return this.ssrcsSeen;
  }

  /** RFC 3550 cumulative loss over every source of the leg. */
  get lost(): number {
    let lost = this.forgottenLost;
    for (const s of this.sources.values()) lost += s.lost;
    return lost;
  }

  /** The current source's interarrival jitter in ms (the live figure). */
  get jitterMs(): number {
    return this.currentSource === null ? 0 : this.currentSource.jitterMs;
  }

  /** The jitter estimate averaged over the leg's audio packets, in ms (the stored figure). */
  get meanJitterMs(): number {
    return this.jitterSamples === 0 ? 0 : this.jitterSumMs / this.jitterSamples;
  }
}
