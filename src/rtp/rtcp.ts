/**
 * RTCP (RFC 3550 §6): parsing a compound packet into the few facts the recorder uses, and
 * building the receiver report (RR + SDES CNAME) it sends back.
 *
 * What we read: a sender report's NTP/RTP timestamp pair (the encoder uses it to refine leg
 * alignment, and its middle 32 NTP bits become the LSR of our next report block), report
 * blocks (for round-trip tests and diagnostics), the SSRCs of SDES chunks and of BYE. SDES
 * item text (CNAME, NAME, EMAIL, PHONE...) is skipped, never returned: it may be personal data.
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;

/** An RTCP datagram longer than this is not something a well-behaved peer sends. */
export const RTCP_MAX_PACKET_BYTES = 65_507;
const MAX_CNAME_BYTES = 255;
const MAX_REPORT_BLOCKS = 31;
/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface ReportBlock {
  ssrc: number;
  /** Fraction of packets lost since the previous report, fixed point /256. */
  fractionLost: number;
  /** Cumulative packets lost; signed 24-bit on the wire (duplicates can make it negative). */
  cumulativeLost: number;
  /** Extended highest sequence number received (cycles << 16 | max seq). */
  highestSeq: number;
  /** Interarrival jitter in RTP timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR from that source, 0 if none. */
  lsr: number;
  /** Delay since that SR in 1/65536 s, 0 if none. */
  dlsr: number;
}

export interface RtcpSenderReport {
  readonly type: 'sr';
  readonly ssrc: number;
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
  readonly reports: readonly ReportBlock[];
}

export interface RtcpReceiverReport {
  readonly type: 'rr';
  readonly ssrc: number;
  readonly reports: readonly ReportBlock[];
}

export interface RtcpSourceDescription {
  readonly type: 'sdes';
  /** SSRC/CSRC of each chunk; the item text is deliberately not kept. */
  readonly ssrcs: readonly number[];
}

export interface RtcpBye {
  readonly type: 'bye';
  readonly ssrcs: readonly number[];
}

/** APP, feedback (RFC 4585), XR (RFC 3611) and anything newer: recognised, not interpreted. */
export interface RtcpOther {
  readonly type: 'other';
  readonly packetType: number;
}

export type RtcpPacket = RtcpSenderReport | RtcpReceiverReport | RtcpSourceDescription | RtcpBye | RtcpOther;

/** The middle 32 bits of a 64-bit NTP timestamp: the LSR field of a report block. */
export function ntpMiddle32(ntpSeconds: number, ntpFraction: number): number {
  return (((ntpSeconds & 0xffff) << 16) | (ntpFraction >>> 16)) >>> 0;
}

/** An SR's NTP timestamp as Unix epoch milliseconds (fractional). */
export function ntpToEpochMs(ntpSeconds: number, ntpFraction: number): number {
  return (ntpSeconds - NTP_UNIX_OFFSET_S) * 1000 + (ntpFraction / 0x1_0000_0000) * 1000;
}

function readReportBlocks(buf: Buffer, offset: number, count: number): ReportBlock[] {
  const blocks: ReportBlock[] = [];
  for (let i = 0; i < count; i++, offset += 24) {
    const lost24 = buf.readUIntBE(offset + 5, 3);
    blocks.push({
      ssrc: buf.readUInt32BE(offset),
      fractionLost: buf[offset + 4]!,
      cumulativeLost: lost24 & 0x800000 ? lost24 - 0x1000000 : lost24,
      highestSeq: buf.readUInt32BE(offset + 8),
      jitter: buf.readUInt32BE(offset + 12),
      lsr: buf.readUInt32BE(offset + 16),
      dlsr: buf.readUInt32BE(offset + 20),
    });
  }
  return blocks;
}

/** SDES chunks: SSRC, then items (type, length, text) up to a null item, padded to 32 bits. */
function readSdesSsrcs(buf: Buffer, start: number, end: number, count: number): number[] | null {
  const ssrcs: number[] = [];
  let p = start;
  for (let i = 0; i < count; i++) {
    if (p + 4 > end) return null;
    ssrcs.push(buf.readUInt32BE(p));
    p += 4;
    for (;;) {
      if (p >= end) return null;
      const itemType = buf[p]!;
      if (itemType === 0) {
        // Chunks start on a 32-bit boundary and every RTCP packet is whole words long, so
        // aligning the absolute offset aligns the chunk.
        p = (p + 1 + 3) & ~3;
        if (p > end) return null;
        break;
      }
      if (p + 2 > end) return null;
      p += 2 + buf[p + 1]!;
      if (p > end) return null;
    }
  }
  return ssrcs;
}

/**
 * Parses a compound RTCP packet (or a single reduced-size one, RFC 5506). Returns null when
 * any part is malformed: wrong version, a length that runs past the datagram, a report count
 * that does not fit, padding that lies, or bytes left over. Never throws.
 */
export function parseRtcp(buf: Buffer): RtcpPacket[] | null {
  if (buf.length < 4 || buf.length > RTCP_MAX_PACKET_BYTES) return null;
  const packets: RtcpPacket[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (offset + 4 > buf.length) return null;
    const b0 = buf[offset]!;
    if (b0 >>> 6 !== 2) return null;
    const count = b0 & 0x1f;
    const pt = buf[offset + 1]!;
    const end = offset + (buf.readUInt16BE(offset + 2) + 1) * 4;
    if (end > buf.length) return null;
    let bodyEnd = end;
    if (b0 & 0x20) {
      // Padding is only legal on the last packet of a compound; its count includes itself.
      if (end !== buf.length) return null;
      const pad = buf[end - 1]!;
      if (pad === 0 || pad > end - offset - 4) return null;
      bodyEnd = end - pad;
    }
    const body = offset + 4;
    switch (pt) {
      case RTCP_SR: {
        if (body + 24 + count * 24 > bodyEnd) return null;
        packets.push({
          type: 'sr',
          ssrc: buf.readUInt32BE(body),
          ntpSeconds: buf.readUInt32BE(body + 4),
          ntpFraction: buf.readUInt32BE(body + 8),
          rtpTimestamp: buf.readUInt32BE(body + 12),
          packetCount: buf.readUInt32BE(body + 16),
          octetCount: buf.readUInt32BE(body + 20),
          reports: readReportBlocks(buf, body + 24, count),
        });
        break;
      }
      case RTCP_RR: {
        if (body + 4 + count * 24 > bodyEnd) return null;
        packets.push({ type: 'rr', ssrc: buf.readUInt32BE(body), reports: readReportBlocks(buf, body + 4, count) });
        break;
      }
      case RTCP_SDES: {
        const ssrcs = readSdesSsrcs(buf, body, bodyEnd, count);
        if (!ssrcs) return null;
        packets.push({ type: 'sdes', ssrcs });
        break;
      }
      case RTCP_BYE: {
        if (body + count * 4 > bodyEnd) return null;
        const ssrcs: number[] = [];
        for (let i = 0; i < count; i++) ssrcs.push(buf.readUInt32BE(body + i * 4));
        const reasonAt = body + count * 4;
        if (reasonAt < bodyEnd && reasonAt + 1 + buf[reasonAt]! > bodyEnd) return null;
        packets.push({ type: 'bye', ssrcs });
        break;
      }
      default:
        if (pt < 192 || pt > 223) return null;
        packets.push({ type: 'other', packetType: pt });
    }
    offset = end;
  }
  return packets;
}

/**
 * A compound RTCP packet: RR from `ourSsrc` with up to 31 report blocks (extra blocks are
 * left out, as RFC 3550 §6.4 allows when there are more sources than fit), then SDES with
 * our CNAME, truncated to 255 octets of UTF-8. The CNAME must not identify a person.
 */
export function buildReceiverReport(ourSsrc: number, cname: string, blocks: readonly ReportBlock[]): Buffer {
  const n = Math.min(blocks.length, MAX_REPORT_BLOCKS);
  let name = Buffer.from(cname, 'utf8');
  if (name.length > MAX_CNAME_BYTES) name = name.subarray(0, MAX_CNAME_BYTES);
  const rrBytes = 8 + n * 24;
  // SDES chunk: SSRC(4) + CNAME item(2 + len) + END(1), padded to a 32-bit boundary.
  const chunkBytes = (4 + 2 + name.length + 1 + 3) & ~3;
  const sdesBytes = 4 + chunkBytes;
  const out = Buffer.alloc(rrBytes + sdesBytes);

  out[0] = 0x80 | n;
  out[1] = RTCP_RR;
  out.writeUInt16BE(rrBytes / 4 - 1, 2);
  out.writeUInt32BE(ourSsrc >>> 0, 4);
  for (let i = 0; i < n; i++) {
    const b = blocks[i]!;
    const o = 8 + i * 24;
    const lost = Math.max(-0x800000, Math.min(0x7fffff, Math.trunc(b.cumulativeLost)));
    out.writeUInt32BE(b.ssrc >>> 0, o);
    out[o + 4] = Math.max(0, Math.min(255, Math.trunc(b.fractionLost)));
    out.writeUIntBE(lost < 0 ? lost + 0x1000000 : lost, o + 5, 3);
    out.writeUInt32BE(b.highestSeq >>> 0, o + 8);
    out.writeUInt32BE(clampU32(b.jitter), o + 12);
    out.writeUInt32BE(b.lsr >>> 0, o + 16);
    out.writeUInt32BE(clampU32(b.dlsr), o + 20);
  }

  const s = rrBytes;
  out[s] = 0x81;
  out[s + 1] = RTCP_SDES;
  out.writeUInt16BE(sdesBytes / 4 - 1, s + 2);
  out.writeUInt32BE(ourSsrc >>> 0, s + 4);
  out[s + 8] = 1; // CNAME
  out[s + 9] = name.length;
  name.copy(out, s + 10);
  // The END item and the padding are the zeros Buffer.alloc left.
  return out;
}

function clampU32(v: number): number {
  if (!(v > 0)) return 0;
  return v >= 0xffffffff ? 0xffffffff : Math.floor(v);
}
