/**
 * What each fuzz target feeds and to which pure parser, and what it checks beyond "no
 * crash". A check may end in one of three ways: it returns (the input was taken), it throws
 * a TallenneError (the parser refused the input, as it should refuse bad input), or it throws
 * anything else: a crash, including an `OracleViolation` when a parser answered wrongly
 * (a forged SRTP packet accepted, a payload outside its packet, framing that depends on
 * how the bytes were chunked).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from './rng.js';
import type { Corpus } from './seeds.js';
import { mutateBytes } from './mutate.js';
import { mutateSip } from './formats/sip.js';
import { mutateSdp } from './formats/sdp.js';
import { mutateMultipart } from './formats/multipart.js';
import { mutateXml } from './formats/xml.js';
import { mutateRtcp, mutateRtp, rtcpCompound, rtpPacket } from './formats/rtp.js';
import { policyOf, srtpCase, type SrtpCase } from './formats/srtp.js';
import { spoolFile } from './formats/spool.js';
import { firstHeader, parseSipMessage } from '../../src/sip/message.js';
import { StreamFramer, type FramerResult } from '../../src/sip/framer.js';
import { parseInviteBody, parseSessionBody, type SessionBody } from '../../src/sip/body.js';
import { buildSdpAnswer, chooseFormats, isPausedMedia, parseSdp, type SdpOffer } from '../../src/sip/sdp.js';
import { chooseCrypto, offeredKeying } from '../../src/sip/sdes.js';
import { parseMultipart } from '../../src/sip/multipart.js';
import { labelsSentBy, mergeMetadata, parseRecordingMetadata, type RecordingMetadata } from '../../src/sip/metadata.js';
import { requestMarksSiprec } from '../../src/sip/siprec.js';
import { looksLikeRtcp, newRtpHeader, readRtpHeader, rtpHeaderLength } from '../../src/rtp/packet.js';
import { parseRtcp } from '../../src/rtp/rtcp.js';
import { SrtpSession } from '../../src/rtp/srtp.js';
import { StartScan } from '../../src/encoder/spool-scan.js';
import { RECORDABLE_CODECS } from '../../src/calls/manager.js';
import { TallenneError } from '../../src/errors.js';

export const TARGET_NAMES = ['sip', 'sip-stream', 'sdp', 'multipart', 'metadata', 'rtp', 'rtcp', 'srtp', 'spool'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** One fuzz input: bytes, and what else its check needs. JSON-friendly apart from `data`. */
export interface FuzzInput {
  readonly target: TargetName;
  readonly data: Buffer;
  readonly contentType?: string;
  /** Where a stream is cut into reads (sip-stream). */
  readonly chunks?: readonly number[];
  readonly srtp?: SrtpCase;
}

/** A parser answered, but wrongly. */
export class OracleViolation extends Error {
  override readonly name = 'OracleViolation';
}

function expect(cond: boolean, what: string): void {
  if (!cond) throw new OracleViolation(what);
}

/** [sip] max_message_bytes as the daemon runs by default. */
export const SIP_MAX_BYTES = 65_535;

export interface CheckEnv {
  /** A folder of the run's own for files a check must write (spools). */
  readonly scratch: string;
}

export interface Target {
  readonly name: TargetName;
  generate(rng: Rng, corpus: Corpus): FuzzInput;
  check(input: FuzzInput, env: CheckEnv): void | Promise<void>;
}

/** What the call manager does with a parsed offer and metadata, short of opening ports. */
function consumeOffer(sdp: SdpOffer): void {
  for (const m of sdp.media) {
    isPausedMedia(m);
    chooseFormats(m, RECORDABLE_CODECS);
    offeredKeying(m.proto, m.cryptoAttributes);
  }
  buildSdpAnswer({ offer: sdp, address: '127.0.0.1', sessionId: '1', version: 1, media: [], userAgent: 'fuzz' });
}

function consumeMetadata(md: RecordingMetadata, base?: RecordingMetadata): void {
  for (const p of md.participants) labelsSentBy(md, p.id);
  if (base !== undefined) {
    mergeMetadata(base, md);
    mergeMetadata(md, base);
  }
}

function consumeBody(b: SessionBody): void {
  if (b.sdp !== undefined) consumeOffer(b.sdp);
  if (b.metadata !== undefined) consumeMetadata(b.metadata);
}

let baseMetadata: RecordingMetadata | undefined;

/** Sometimes a clean seed, mostly a mutant, now and then bytes mutated blindly on top. */
function blind(rng: Rng, b: Buffer): Buffer {
  return rng.chance(0.15) ? mutateBytes(rng, b) : b;
}

const sip: Target = {
  name: 'sip',
  generate(rng, corpus) {
    let msg = rng.pick(corpus.sip);
    for (let r = rng.chance(0.9) ? 1 : rng.range(2, 4); r > 0; r--) msg = mutateSip(rng, corpus, msg);
    return { target: 'sip', data: blind(rng, msg) };
  },
  check(input) {
    const m = parseSipMessage(input.data, SIP_MAX_BYTES);
    expect(m.body.length <= input.data.length, 'body longer than the message');
    if (m.kind !== 'request') return;
    requestMarksSiprec(m.headers);
    if (m.body.length === 0) return;
    const ct = firstHeader(m.headers, 'content-type');
    consumeBody(m.method === 'INVITE' ? parseInviteBody(ct, m.body) : parseSessionBody(ct, m.body));
  },
};

function framed(chunks: readonly Buffer[]): { frames: string[]; error: boolean; buffered: number } {
  const f = new StreamFramer(SIP_MAX_BYTES);
  const frames: string[] = [];
  let error = false;
  for (const c of chunks) {
    const r: FramerResult = f.push(c);
    for (const fr of r.frames) {
      expect(fr.kind === 'ping' || fr.data.length <= SIP_MAX_BYTES, 'frame over the message limit');
      frames.push(fr.kind === 'ping' ? 'ping' : fr.data.toString('latin1'));
    }
    if (r.error !== undefined) {
      error = true;
      break;
    }
  }
  return { frames, error, buffered: error ? 0 : f.buffered };
}

const sipStream: Target = {
  name: 'sip-stream',
  generate(rng, corpus) {
    const messages = Array.from({ length: rng.range(1, 3) }, () => {
      const seed = rng.pick(corpus.sip);
      return rng.chance(0.3) ? seed : mutateSip(rng, corpus, seed);
    });
    const data = blind(rng, Buffer.concat(messages));
    const chunks = Array.from({ length: rng.range(0, 6) }, () => rng.int(data.length + 1)).sort((a, b) => a - b);
    return { target: 'sip-stream', data, chunks };
  },
  check(input) {
    const cuts = [0, ...(input.chunks ?? []), input.data.length];
    const pieces = cuts.slice(1).map((end, i) => input.data.subarray(cuts[i]!, end));
    const whole = framed([input.data]);
    const split = framed(pieces);
    // A stream must frame the same whatever the reads it arrives in.
    expect(whole.error === split.error, `framing error ${whole.error} whole, ${split.error} in ${pieces.length} reads`);
    expect(whole.frames.length === split.frames.length && whole.frames.every((f, i) => f === split.frames[i]), 'frames differ with the reads');
    expect(whole.buffered === split.buffered, 'bytes held differ with the reads');
    for (const f of whole.frames) {
      if (f === 'ping') continue;
      try {
        parseSipMessage(Buffer.from(f, 'latin1'), SIP_MAX_BYTES);
      } catch (e) {
        if (!(e instanceof TallenneError)) throw e;
      }
    }
  },
};

const sdp: Target = {
  name: 'sdp',
  generate(rng, corpus) {
    const text = mutateSdp(rng, rng.pick(corpus.sdp));
    return { target: 'sdp', data: blind(rng, Buffer.from(text, 'utf8')) };
  },
  check(input) {
    const offer = parseSdp(input.data.toString('utf8'));
    consumeOffer(offer);
    for (const m of offer.media) chooseCrypto(m.cryptoAttributes);
  },
};

const multipart: Target = {
  name: 'multipart',
  generate(rng, corpus) {
    const m = mutateMultipart(rng, rng.pick(corpus.multipart));
    return { target: 'multipart', data: blind(rng, m.body), contentType: m.contentType };
  },
  check(input) {
    const ct = input.contentType ?? '';
    for (const part of parseMultipart(ct, input.data)) expect(part.body.length <= input.data.length, 'part longer than the body');
    consumeBody(parseSessionBody(ct, input.data));
  },
};

const metadata: Target = {
  name: 'metadata',
  generate(rng, corpus) {
    const xml = mutateXml(rng, rng.pick(corpus.xml));
    return { target: 'metadata', data: blind(rng, Buffer.from(xml, 'utf8')) };
  },
  check(input) {
    baseMetadata ??= parseRecordingMetadata(BASE_METADATA);
    consumeMetadata(parseRecordingMetadata(input.data.toString('utf8')), baseMetadata);
  },
};

const BASE_METADATA = '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><datamode>complete</datamode>'
  + '<participant participant_id="p1"><nameID aor="sip:1001@pbx.example"/></participant><stream stream_id="s1"><label>1</label></stream>'
  + '<participantstreamassoc participant_id="p1"><send>s1</send></participantstreamassoc></recording>';

const header = newRtpHeader();

const rtp: Target = {
  name: 'rtp',
  generate(rng, corpus) {
    let b = rtpPacket(rng, corpus.payloadTypes);
    if (rng.chance(0.7)) b = mutateRtp(rng, b);
    return { target: 'rtp', data: blind(rng, b) };
  },
  check(input) {
    const b = input.data;
    looksLikeRtcp(b);
    if (b.length >= 12) {
      const h = rtpHeaderLength(b, b.length);
      expect(h === -1 || (h >= 12 && h <= b.length), 'header length outside the packet');
    }
    if (readRtpHeader(b, b.length, header) === null) {
      expect(header.payloadOffset >= 12 && header.payloadLength >= 0 && header.payloadOffset + header.payloadLength <= b.length, 'payload outside the packet');
    }
  },
};

const rtcp: Target = {
  name: 'rtcp',
  generate(rng) {
    let b = rtcpCompound(rng);
    if (rng.chance(0.7)) b = mutateRtcp(rng, b);
    return { target: 'rtcp', data: blind(rng, b) };
  },
  check(input) {
    const packets = parseRtcp(input.data);
    expect(packets === null || (Array.isArray(packets) && packets.length > 0), 'an empty compound accepted');
  },
};

const srtp: Target = {
  name: 'srtp',
  generate(rng, corpus) {
    const { c, packet } = srtpCase(rng, corpus.payloadTypes);
    return { target: 'srtp', data: packet, srtp: c };
  },
  check(input) {
    const c = input.srtp!;
    const rx = new SrtpSession(policyOf(c));
    const unprotect = (b: Buffer) => (c.rtcp ? rx.unprotectRtcp(b) : rx.unprotectRtp(b));
    for (const hex of c.genuine) {
      const r = unprotect(Buffer.from(hex, 'hex'));
      expect(r.ok, `a genuine packet was refused (${r.ok ? '' : r.reason})`);
    }
    const hex = input.data.toString('hex');
    const r = unprotect(Buffer.from(input.data));
    if (r.ok) expect(r.packet.length <= input.data.length, 'plain packet longer than the protected one');
    if (hex === c.last) expect(r.ok, `the genuine packet was refused (${r.ok ? '' : r.reason})`);
    else if (c.genuine.includes(hex)) expect(!r.ok && r.reason === 'replayed', 'a replayed packet was accepted');
    // Anything else must fail, unless the offer turned SRTP authentication off.
    else if (!c.unauthenticatedSrtp || c.rtcp) expect(!r.ok, 'a forged packet was accepted');
  },
};

const spool: Target = {
  name: 'spool',
  generate(rng, corpus) {
    return { target: 'spool', data: spoolFile(rng, corpus.payloadTypes) };
  },
  async check(input, env) {
    const path = join(env.scratch, 'call.spool');
    writeFileSync(path, input.data);
    // The encoder's start-of-call look-ahead reads the records through the spool follower
    // (META shapes, RTP headers, RTCP sender reports) as the encoder does.
    const scan = new StartScan(path);
    try {
      await scan.advance(true);
      // As the encoder does, a spool without a usable META is refused.
      if (scan.answeredAt === null) throw new TallenneError('TALLENNE_SPOOL_CORRUPT', 'no usable META record');
    } finally {
      await scan.close();
    }
  },
};

export const TARGETS: Readonly<Record<TargetName, Target>> = {
  sip, 'sip-stream': sipStream, sdp, multipart, metadata, rtp, rtcp, srtp, spool,
};
