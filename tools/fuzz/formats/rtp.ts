/**
 * RTP (RFC 3550 §5.1) and RTCP (§6) packets built field by field, then made to lie: CSRC
 * counts without their words, header extensions longer than the packet, padding counts of
 * zero or past the payload, other versions; compound RTCP with SR/RR report counts that do
 * not fit, SDES chunks without an end, BYE reasons past the packet, padding on a packet
 * that is not the last, and packet types outside the RTCP range.
 */
import type { Rng } from '../rng.js';

export function rtpPacket(rng: Rng, payloadTypes: readonly number[]): Buffer {
  const csrc = rng.chance(0.8) ? 0 : rng.int(16);
  const ext = rng.chance(0.2) ? rng.int(4) : -1;
  const payload = rng.bytes(rng.pick([0, 1, 20, 160, 320, rng.size(1400)]));
  const pad = rng.chance(0.15) ? rng.range(1, 8) : 0;
  const head = 12 + csrc * 4 + (ext >= 0 ? 4 + ext * 4 : 0);
  const b = Buffer.alloc(head + payload.length + pad);
  b[0] = 0x80 | (pad > 0 ? 0x20 : 0) | (ext >= 0 ? 0x10 : 0) | csrc;
  b[1] = (rng.chance(0.1) ? 0x80 : 0) | (rng.chance(0.9) ? rng.pick(payloadTypes) : rng.int(128));
  b.writeUInt16BE(rng.int(0x10000), 2);
  b.writeUInt32BE(rng.int(0x100000000), 4);
  b.writeUInt32BE(rng.int(0x100000000), 8);
  for (let i = 0; i < csrc; i++) b.writeUInt32BE(rng.int(0x100000000), 12 + i * 4);
  if (ext >= 0) {
    const at = 12 + csrc * 4;
    b.writeUInt16BE(rng.pick([0xbede, 0x1000, 0]), at);
    b.writeUInt16BE(ext, at + 2);
  }
  payload.copy(b, head);
  if (pad > 0) b[b.length - 1] = pad;
  return b;
}

/** Makes one of the packet's own length or count fields lie. */
export function mutateRtp(rng: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  if (out.length < 12) return out;
  switch (rng.int(6)) {
    case 0: out[0] = (out[0]! & 0xf0) | rng.int(16); break; // CSRC count
    case 1: out[0] = out[0]! | 0x10; if (out.length >= 16 + (out[0]! & 0x0f) * 4) out.writeUInt16BE(rng.pick([0, 1, 0xffff, out.length >> 2]), 14 + (out[0]! & 0x0f) * 4); break;
    case 2: out[0] = out[0]! | 0x20; out[out.length - 1] = rng.pick([0, 1, out.length - 12, out.length, 255]); break;
    case 3: out[0] = (out[0]! & 0x3f) | (rng.int(4) << 6); break; // version
    case 4: out[1] = rng.int(256); break; // marker and payload type, RTCP range included
    default: return out.subarray(0, rng.int(out.length));
  }
  return out;
}

function header(count: number, pt: number, words: number): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x80 | (count & 0x1f);
  h[1] = pt;
  h.writeUInt16BE(words & 0xffff, 2);
  return h;
}

function reportBlocks(rng: Rng, n: number): Buffer {
  return rng.bytes(n * 24);
}

/** One RTCP packet of a random type, well formed. */
function rtcpPacket(rng: Rng): Buffer {
  switch (rng.int(7)) {
    case 0: { // SR
      const n = rng.int(4);
      const body = Buffer.concat([rng.bytes(24), reportBlocks(rng, n)]);
      return Buffer.concat([header(n, 200, body.length / 4), body]);
    }
    case 1: { // RR
      const n = rng.int(4);
      const body = Buffer.concat([rng.bytes(4), reportBlocks(rng, n)]);
      return Buffer.concat([header(n, 201, body.length / 4), body]);
    }
    case 2: { // SDES: chunks of SSRC, items, END, padded to 32 bits
      const n = rng.range(1, 3);
      const chunks: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const items: Buffer[] = [rng.bytes(4)];
        for (let k = rng.range(1, 3); k > 0; k--) {
          const text = Buffer.from(rng.pick(['user@host', 'tallenne', '', 'x'.repeat(255)]), 'latin1');
          items.push(Buffer.from([rng.range(1, 8), text.length]), text);
        }
        items.push(Buffer.from([0]));
        let chunk = Buffer.concat(items);
        chunk = Buffer.concat([chunk, Buffer.alloc((4 - (chunk.length % 4)) % 4)]);
        chunks.push(chunk);
      }
      const body = Buffer.concat(chunks);
      return Buffer.concat([header(n, 202, body.length / 4), body]);
    }
    case 3: { // BYE with an optional reason
      const n = rng.int(3);
      const reason = rng.chance(0.5) ? Buffer.from([7, ...Buffer.from('timeout')]) : Buffer.alloc(0);
      let body = Buffer.concat([rng.bytes(4 * n), reason]);
      body = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
      return Buffer.concat([header(n, 203, body.length / 4), body]);
    }
    default: { // APP, RTPFB, PSFB, XR and other types
      const words = rng.int(6);
      return Buffer.concat([header(rng.int(32), rng.pick([204, 205, 206, 207, 192, 223, 199, 224]), words), rng.bytes(words * 4)]);
    }
  }
}

export function rtcpCompound(rng: Rng): Buffer {
  const packets = Array.from({ length: rng.range(1, 4) }, () => rtcpPacket(rng));
  return Buffer.concat(packets);
}

/** Makes a length, count or padding field of one packet in the compound lie. */
export function mutateRtcp(rng: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  // Offsets of the packets, as their own length fields say.
  const starts: number[] = [];
  for (let o = 0; o + 4 <= out.length && starts.length < 16; o += (out.readUInt16BE(o + 2) + 1) * 4) starts.push(o);
  if (starts.length === 0) return out;
  const at = rng.pick(starts);
  switch (rng.int(5)) {
    case 0: out.writeUInt16BE(rng.pick([0, 1, 0xffff, out.readUInt16BE(at + 2) + rng.range(-2, 2) & 0xffff]), at + 2); break;
    case 1: out[at] = (out[at]! & 0xe0) | rng.int(32); break; // report or chunk count
    case 2: out[at] = out[at]! | 0x20; out[out.length - 1] = rng.pick([0, 1, 4, out.length, 255]); break; // padding
    case 3: out[at] = (out[at]! & 0x3f) | (rng.int(4) << 6); break;
    default: out[at + 1] = rng.int(256);
  }
  return out;
}
