/**
 * RTP fixed-header parsing (RFC 3550 §5.1) and RTP/RTCP demultiplexing (RFC 5761 §4).
 *
 * The capture path parses every packet, so the parser fills a caller-owned header object
 * instead of returning a new one: with one reusable RtpHeader per leg the only allocation
 * per packet is the receive buffer dgram already made.
 */

/** Why a datagram was not accepted. Stable strings: they are metric label values. */
export type RtpDropReason =
  | 'too_short'
  /** Longer than a batched receive slot (rtp.receive "batched"): cut by the kernel, never parsed. */
  | 'too_long'
  | 'bad_version'
  | 'bad_header'
  | 'unknown_payload_type'
  | 'paused'
  | 'rtcp_malformed';

export const RTP_DROP_REASONS: readonly RtpDropReason[] = [
  'too_short', 'too_long', 'bad_version', 'bad_header', 'unknown_payload_type', 'paused', 'rtcp_malformed',
];

export interface RtpHeader {
  version: number;
  padding: boolean;
  extension: boolean;
  marker: boolean;
  payloadType: number;
  sequence: number;
  timestamp: number;
  ssrc: number;
  /** Where the payload starts: after the CSRC list and the header extension. */
  payloadOffset: number;
  /** Payload bytes, padding excluded. */
  payloadLength: number;
}

export const RTP_FIXED_HEADER_BYTES = 12;
/** Largest datagram we will look at: the IPv4 UDP payload limit. */
export const RTP_MAX_PACKET_BYTES = 65_507;

export function newRtpHeader(): RtpHeader {
  return {
    version: 0, padding: false, extension: false, marker: false, payloadType: 0,
    sequence: 0, timestamp: 0, ssrc: 0, payloadOffset: 0, payloadLength: 0,
  };
}

/**
 * The RTP header's length: the fixed part, the CSRC list and the header extension, when
 * all of it fits in the first `end` octets of `buf` (which must hold the 12 fixed ones);
 * else -1. Padding is not looked at: under SRTP the padding count is encrypted.
 */
export function rtpHeaderLength(buf: Buffer, end: number): number {
  let at = RTP_FIXED_HEADER_BYTES + (buf[0]! & 0x0f) * 4;
  if (at > end) return -1;
  if ((buf[0]! & 0x10) !== 0) {
    // RFC 3550 §5.3.1: 16-bit profile field, 16-bit length in 32-bit words, then the words.
    if (at + 4 > end) return -1;
    at += 4 + buf.readUInt16BE(at + 2) * 4;
    if (at > end) return -1;
  }
  return at;
}

/**
 * Parses the first `length` bytes of `buf` into `out`. Returns null when the header is
 * well formed, or the reason to drop the packet. Never throws: every length the packet
 * claims (CSRC count, extension words, padding count) is checked against the real length
 * before it is used. `out` may be partly overwritten when a reason is returned.
 */
export function readRtpHeader(buf: Buffer, length: number, out: RtpHeader): RtpDropReason | null {
  const len = Math.min(length, buf.length, RTP_MAX_PACKET_BYTES);
  if (!(len >= RTP_FIXED_HEADER_BYTES)) return 'too_short';
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const version = b0 >>> 6;
  out.version = version;
  if (version !== 2) return 'bad_version';
  out.padding = (b0 & 0x20) !== 0;
  out.extension = (b0 & 0x10) !== 0;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  out.sequence = buf.readUInt16BE(2);
  out.timestamp = buf.readUInt32BE(4);
  out.ssrc = buf.readUInt32BE(8);

  const offset = rtpHeaderLength(buf, len);
  if (offset < 0) return 'bad_header';
  let pad = 0;
  if (out.padding) {
    // The last octet counts the padding octets, itself included, so zero is impossible.
    pad = buf[len - 1]!;
    if (pad === 0 || offset + pad > len) return 'bad_header';
  }
  out.payloadOffset = offset;
  out.payloadLength = len - offset - pad;
  return null;
}

/**
 * RFC 5761 §4: when RTP and RTCP share a port, the second octet tells them apart. RTCP
 * packet types 192..223 land there; RTP payload types that would collide (64..95 with the
 * marker bit) are not used by any profile we accept. The version bits must also say 2.
 */
export function looksLikeRtcp(buf: Buffer): boolean {
  if (buf.length < 2) return false;
  const b1 = buf[1]!;
  return buf[0]! >>> 6 === 2 && b1 >= 192 && b1 <= 223;
}
