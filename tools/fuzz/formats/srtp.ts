/**
 * SRTP and SRTCP (RFC 3711, RFC 7714) against a known policy: a random suite, keys, MKIs,
 * key derivation rate and session parameters, a few genuine packets protected under it
 * (sequence numbers near a rollover, sometimes), and one packet that the receiver must
 * refuse unless it is genuine: a random or cut authentication tag, wrong lengths, a header
 * field, MKI, SRTCP index or E flag changed, or a genuine packet replayed.
 */
import type { Rng } from '../rng.js';
import { SRTP_SUITE_NAMES, SRTP_SUITES, type SrtpSuiteName } from '../../../src/rtp/srtp-suites.js';
import { SrtpSession, type SrtpPolicy } from '../../../src/rtp/srtp.js';
import { mutateBytes } from '../mutate.js';
import { rtcpCompound, rtpPacket } from './rtp.js';

/** Everything the check needs, in JSON-friendly form (keys are throwaway fuzz keys). */
export interface SrtpCase {
  suite: SrtpSuiteName;
  /** key||salt per master key, hex. */
  keys: string[];
  /** MKI per key, hex; empty strings when the policy has none. */
  mkis: string[];
  lifetime?: number;
  keyDerivationRate: number;
  unencryptedSrtp: boolean;
  unencryptedSrtcp: boolean;
  unauthenticatedSrtp: boolean;
  replayWindow: number;
  rtcp: boolean;
  /** Protected packets delivered first, hex, in order. */
  genuine: string[];
  /** The genuine packet the input was mutated from, hex: the only new one that may pass. */
  last: string;
}

export function policyOf(c: SrtpCase): SrtpPolicy {
  const s = SRTP_SUITES[c.suite];
  return {
    suite: c.suite,
    keys: c.keys.map((hex, i) => {
      const raw = Buffer.from(hex, 'hex');
      const mki = c.mkis[i] ?? '';
      return {
        key: raw.subarray(0, s.keyBytes),
        salt: raw.subarray(s.keyBytes),
        ...(mki !== '' ? { mki: Buffer.from(mki, 'hex') } : {}),
        ...(c.lifetime !== undefined ? { lifetime: c.lifetime } : {}),
      };
    }),
    mkiLength: (c.mkis[0] ?? '').length / 2,
    keyDerivationRate: c.keyDerivationRate,
    unencryptedSrtp: c.unencryptedSrtp,
    unencryptedSrtcp: c.unencryptedSrtcp,
    unauthenticatedSrtp: c.unauthenticatedSrtp,
    replayWindow: c.replayWindow,
  };
}

export function srtpCase(rng: Rng, payloadTypes: readonly number[]): { c: SrtpCase; packet: Buffer } {
  const suite = rng.pick(SRTP_SUITE_NAMES);
  const s = SRTP_SUITES[suite];
  const nKeys = rng.chance(0.7) ? 1 : rng.range(2, 3);
  const mkiLength = nKeys > 1 || rng.chance(0.2) ? rng.range(1, 4) : 0;
  const c: SrtpCase = {
    suite,
    keys: Array.from({ length: nKeys }, () => rng.bytes(s.keyBytes + s.saltBytes).toString('hex')),
    mkis: Array.from({ length: nKeys }, (_, i) => (mkiLength === 0 ? '' : Buffer.alloc(mkiLength, i + 1).toString('hex'))),
    ...(rng.chance(0.2) ? { lifetime: rng.range(8, 1000) } : {}),
    keyDerivationRate: rng.chance(0.8) ? 0 : rng.pick([1, 2, 16, 2 ** 24]),
    unencryptedSrtp: rng.chance(0.15),
    unencryptedSrtcp: rng.chance(0.15),
    unauthenticatedSrtp: s.transform === 'cm' && rng.chance(0.1),
    replayWindow: rng.pick([64, 128, 1024]),
    rtcp: rng.chance(0.35),
    genuine: [],
    last: '',
  };
  const sender = new SrtpSession(policyOf(c));
  const keyIndex = rng.int(nKeys);
  let seq = rng.chance(0.3) ? rng.range(0xfffc, 0xffff) : rng.int(0x10000);
  const ssrc = rng.int(0x100000000);
  const protectedPackets: Buffer[] = [];
  for (let i = rng.range(1, 4); i > 0; i--) {
    if (c.rtcp) {
      let plain = rtcpCompound(rng);
      if (plain.length < 8) plain = Buffer.concat([plain, Buffer.alloc(8 - plain.length)]);
      plain.writeUInt32BE(ssrc, 4);
      protectedPackets.push(sender.protectRtcp(plain, keyIndex));
    } else {
      const plain = rtpPacket(rng, payloadTypes);
      plain[0] = plain[0]! & ~0x20; // the padding count is encrypted; keep the plain packet honest
      plain.writeUInt16BE(seq, 2);
      plain.writeUInt32BE(ssrc, 8);
      seq = (seq + rng.range(1, 3)) & 0xffff;
      protectedPackets.push(sender.protectRtp(plain, keyIndex));
    }
  }
  c.genuine = protectedPackets.slice(0, -1).map((p) => p.toString('hex'));
  const last = protectedPackets[protectedPackets.length - 1]!;
  c.last = last.toString('hex');
  return { c, packet: mutateSrtp(rng, last, protectedPackets, c) };
}

function mutateSrtp(rng: Rng, packet: Buffer, all: readonly Buffer[], c: SrtpCase): Buffer {
  const s = SRTP_SUITES[c.suite];
  const tag = c.rtcp ? s.srtcpTagBytes : c.unauthenticatedSrtp ? 0 : s.srtpTagBytes;
  const out = Buffer.from(packet);
  switch (rng.int(9)) {
    case 0: return packet; // the genuine packet itself: must be accepted
    case 1: return Buffer.from(rng.pick(all)); // a replay, or the genuine one
    case 2: { // a random authentication tag (its place differs by transform; any tail will do)
      rng.bytes(tag).copy(out, Math.max(0, out.length - tag - rng.int(6)));
      return out;
    }
    case 3: return out.subarray(0, Math.max(0, out.length - rng.range(1, tag + 8)));
    case 4: return Buffer.concat([out, rng.bytes(rng.range(1, 40))]);
    case 5: { // a header field: sequence number, SSRC, CSRC count, extension bit
      const at = rng.pick([0, 1, 2, 3, 8, 11]);
      if (at < out.length) out[at] = out[at]! ^ (1 << rng.int(8));
      return out;
    }
    case 6: { // the SRTCP E flag and index word, or the MKI
      const at = out.length - tag - rng.range(1, 8);
      if (at >= 0) out[at] = out[at]! ^ (rng.chance(0.5) ? 0x80 : 1 << rng.int(8));
      return out;
    }
    case 7: return rng.bytes(rng.size(200));
    default: return mutateBytes(rng, out);
  }
}
