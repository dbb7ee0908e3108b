/** Builders for RTP/RTCP test packets, written from RFC 3550 §5.1 / §6.4, not from our parser. */

export interface RtpSpec {
  pt?: number;
  seq: number;
  ts: number;
  ssrc: number;
  marker?: boolean;
  csrcs?: number[];
  /** Header extension: profile id and 32-bit words. */
  extension?: { profile: number; words: number };
  payload?: Buffer;
  /** Padding octets to add (count includes the last octet). */
  padding?: number;
}

export function rtpPacket(s: RtpSpec): Buffer {
  const csrcs = s.csrcs ?? [];
  const ext = s.extension;
  const payload = s.payload ?? Buffer.alloc(160, 0xff);
  const pad = s.padding ?? 0;
  const headerLen = 12 + csrcs.length * 4 + (ext ? 4 + ext.words * 4 : 0);
  const buf = Buffer.alloc(headerLen + payload.length + pad);
  buf[0] = 0x80 | (pad ? 0x20 : 0) | (ext ? 0x10 : 0) | csrcs.length;
  buf[1] = (s.marker ? 0x80 : 0) | (s.pt ?? 0);
  buf.writeUInt16BE(s.seq & 0xffff, 2);
  buf.writeUInt32BE(s.ts >>> 0, 4);
  buf.writeUInt32BE(s.ssrc >>> 0, 8);
  let o = 12;
  for (const c of csrcs) {
    buf.writeUInt32BE(c, o);
    o += 4;
  }
  if (ext) {
    buf.writeUInt16BE(ext.profile, o);
    buf.writeUInt16BE(ext.words, o + 2);
    for (let i = 0; i < ext.words; i++) buf.writeUInt32BE(0xdeadbeef, o + 4 + i * 4);
    o += 4 + ext.words * 4;
  }
  payload.copy(buf, o);
  if (pad) buf[buf.length - 1] = pad;
  return buf;
}

/** A sender report with no report blocks, optionally followed by an SDES chunk. */
export function senderReport(ssrc: number, ntpSec: number, ntpFrac: number, rtpTs: number, packets: number, octets: number): Buffer {
  const sr = Buffer.alloc(28);
  sr[0] = 0x80;
  sr[1] = 200;
  sr.writeUInt16BE(6, 2);
  sr.writeUInt32BE(ssrc >>> 0, 4);
  sr.writeUInt32BE(ntpSec >>> 0, 8);
  sr.writeUInt32BE(ntpFrac >>> 0, 12);
  sr.writeUInt32BE(rtpTs >>> 0, 16);
  sr.writeUInt32BE(packets, 20);
  sr.writeUInt32BE(octets, 24);
  // SDES with CNAME "x@y": chunk = ssrc(4) + type(1) + len(1) + 3 + END(1) = 10, padded to 12.
  const sdes = Buffer.alloc(16);
  sdes[0] = 0x81;
  sdes[1] = 202;
  sdes.writeUInt16BE(3, 2);
  sdes.writeUInt32BE(ssrc >>> 0, 4);
  sdes[8] = 1;
  sdes[9] = 3;
  sdes.write('x@y', 10, 'latin1');
  return Buffer.concat([sr, sdes]);
}

export { prng } from '../../support/fuzz.js';
