/**
 * Process-wide RTP counters. The capture path bumps plain numbers (no events, no labels, no
 * allocation); the metrics module reads them when Prometheus scrapes.
 *
 * - `activeLegs`: every open leg receiver registers itself, so a scrape counts live legs;
 * - `jitterObservations`: jitter is a per-leg level, not a count: when a leg closes its
 *   final jitter is queued here, for the metrics module to drain into a prom-client
 *   Histogram (bounded, so a metrics module that never scrapes cannot grow it without limit).
 */
import { RTP_DROP_REASONS, type RtpDropReason } from './packet.js';
import { SRTP_DROP_REASONS, type SrtpDropReason } from './srtp.js';
import type { SourceDropReason } from './source-filter.js';

/**
 * Every reason a datagram on an RTP port is dropped (the `reason` label of
 * tallenne_rtp_packets_dropped_total): the RTP/RTCP checks, the source rules, and SRTP's
 * checks prefixed `srtp_` (so an SRTP `too_short` is told apart from a plain one).
 */
export type DropReason = RtpDropReason | SourceDropReason | `srtp_${SrtpDropReason}`;

export const DROP_REASONS: readonly DropReason[] = [
  ...RTP_DROP_REASONS,
  'wrong_source',
  'second_source',
  ...SRTP_DROP_REASONS.map((r) => `srtp_${r}` as const),
];

/** What a leg receiver exposes to the metrics module at scrape time. */
export interface LegJitterSource {
  readonly jitterMs: number;
}

/** Final jitter values of closed legs waiting for the next scrape. */
export class JitterObservations {
  private values: number[] = [];
  constructor(readonly capacity = 10_000) {}

  push(jitterMs: number): void {
    if (this.values.length < this.capacity) this.values.push(jitterMs);
  }

  /** Returns the queued observations and empties the queue. */
  drain(): number[] {
    const v = this.values;
    this.values = [];
    return v;
  }

  get pending(): number {
    return this.values.length;
  }
}

export interface RtpCounters {
  /** Accepted RTP packets (spooled). */
  packets: number;
  /** Bytes of accepted RTP packets, headers included. */
  bytes: number;
  /** Packets lost (RFC 3550 cumulative loss), added as legs report it; never decreases. */
  lost: number;
  /** Accepted RTCP compound packets (spooled). */
  rtcp: number;
  /** RTCP receiver reports we sent. */
  rtcpSent: number;
  /** SSRC changes seen on a leg after its first packet. */
  ssrcChanges: number;
  dropped: Record<DropReason, number>;
  readonly activeLegs: Set<LegJitterSource>;
  readonly jitterObservations: JitterObservations;
}

export function newRtpCounters(): RtpCounters {
  const dropped = {} as Record<DropReason, number>;
  for (const r of DROP_REASONS) dropped[r] = 0;
  return {
    packets: 0,
    bytes: 0,
    lost: 0,
    rtcp: 0,
    rtcpSent: 0,
    ssrcChanges: 0,
    dropped,
    activeLegs: new Set(),
    jitterObservations: new JitterObservations(),
  };
}

/** The counters of this process; tests pass their own from newRtpCounters(). */
export const rtpCounters: RtpCounters = newRtpCounters();
