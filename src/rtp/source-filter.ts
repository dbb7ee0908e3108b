/**
 * Which source address a leg takes its media from (`[rtp] source`):
 *
 * - `strict`: RTP only from the address and port the SDP offer names, RTCP only from that
 *   address on the offer's RTCP port (a=rtcp, else port + 1) or on the RTP port (mux).
 *   An offer without a connection address names no source: nothing is accepted.
 * - `latch`: the first source whose packet is accepted is latched; packets from any other
 *   address or port are dropped after it, unless they carry a new SSRC and the latched
 *   source has been silent for RELATCH_GAP_MS (an SBC that moved the stream, a failover).
 *   A re-offer that moves the media lets go of the latch. RTCP is taken from the latched
 *   address on any port.
 *
 * Pure and per leg: the receiver asks before it spends anything on a packet (SRTP, parsing)
 * and tells the filter which packets it accepted, so a forged packet can never latch.
 */

export type SourceMode = 'latch' | 'strict';

/** Why a datagram was refused for its source: metric label values. */
export type SourceDropReason = 'wrong_source' | 'second_source';

/** Where the offer says media comes from. */
export interface OfferedSource {
  /** Connection address; null when the offer has none. */
  readonly address: string | null;
  readonly rtpPort: number;
  readonly rtcpPort: number;
}

/** How long the latched source must be silent before a new source with a new SSRC may take over. */
export const RELATCH_GAP_MS = 1000;

interface Latched {
  address: string;
  port: number;
  ssrc: number;
  lastAt: number;
}

/** IPv4 packets on a dual-stack socket arrive as ::ffff:a.b.c.d; offers write a.b.c.d. */
function plainAddress(a: string): string {
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class SourceFilter {
  private latched: Latched | null = null;
  private offered: OfferedSource;

  constructor(readonly mode: SourceMode, offered: OfferedSource) {
    this.offered = { ...offered, address: offered.address === null ? null : plainAddress(offered.address) };
  }

  /** A re-offer: strict follows the new address; latch lets go when the media moved. */
  setOffered(o: OfferedSource): void {
    const next = { ...o, address: o.address === null ? null : plainAddress(o.address) };
    if (next.address !== this.offered.address || next.rtpPort !== this.offered.rtpPort) this.latched = null;
    this.offered = next;
  }

  /** The RTP source to report to: the latched one, or (strict) the offered one once heard. */
  get source(): { address: string; port: number } | null {
    return this.latched;
  }

  /** Null when an RTP packet from `address`:`port` with `ssrc` may be looked at, else why not. */
  checkRtp(address: string, port: number, ssrc: number, now: number): SourceDropReason | null {
    const addr = plainAddress(address);
    if (this.mode === 'strict') {
      return addr === this.offered.address && port === this.offered.rtpPort ? null : 'wrong_source';
    }
    const l = this.latched;
    if (l === null || (l.address === addr && l.port === port)) return null;
    return ssrc !== l.ssrc && now - l.lastAt >= RELATCH_GAP_MS ? null : 'second_source';
  }

  /** The receiver accepted an RTP packet that checkRtp let through: latch on (or follow) its source. */
  accepted(address: string, port: number, ssrc: number, now: number): void {
    const l = this.latched;
    const addr = plainAddress(address);
    if (l !== null && l.address === addr && l.port === port) {
      l.ssrc = ssrc;
      l.lastAt = now;
    } else {
      this.latched = { address: addr, port, ssrc, lastAt: now };
    }
  }

  /** Null when an RTCP packet from `address`:`port` may be looked at, else why not. */
  checkRtcp(address: string, port: number): SourceDropReason | null {
    const addr = plainAddress(address);
    if (this.mode === 'strict') {
      const o = this.offered;
      return addr === o.address && (port === o.rtcpPort || port === o.rtpPort) ? null : 'wrong_source';
    }
    return this.latched === null || this.latched.address === addr ? null : 'second_source';
  }
}
