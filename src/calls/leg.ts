/**
 * One recorded stream of a call: what the offer's m-line made of it (the LegDescriptor:
 * index, label, role, channel, formats), the RTP/RTCP port pair it is received on, the
 * receiver that spools its packets, and its SRTP keys when the m-line is SRTP. They live and
 * change together, so nothing pairs them by position in parallel lists.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { PortPair } from '../rtp/ports.js';
import type { RtpCounters } from '../rtp/counters.js';
import { RtpLegReceiver } from '../rtp/receiver.js';
import type { OfferedSource, SourceMode } from '../rtp/source-filter.js';
import { SRTP_SUITES, type SrtpSuiteName } from '../rtp/srtp-suites.js';
import type { SdpMedia } from '../sip/sdp.js';
import { answerPolicy, buildCryptoAnswer, type MediaKeying } from '../sip/sdes.js';
import type { SpoolWriter } from '../spool/writer.js';
import type { LegDescriptor, MediaFormat } from '../types.js';

/** What an offered m-line gives a leg: its formats, its keying and where its media comes from. */
export interface LegOffer {
  readonly media: SdpMedia;
  readonly formats: readonly MediaFormat[];
  /** Plain or SDES; an unsupported keying never makes a leg. */
  readonly keying: Exclude<MediaKeying, { kind: 'unsupported' }>;
}

/** The SRTP state of a leg; the keys themselves live in the receiver's sessions. */
interface LegSrtp {
  readonly suite: SrtpSuiteName;
  /** The offer's chosen a=crypto value: a re-offer that repeats it keeps the keys. */
  readonly offered: string;
  /** Our answer's a=crypto value (with our key), repeated in every later answer. */
  readonly answer: string;
}

/** Where the offer says the leg's media comes from (RTCP: a=rtcp, else the port above). */
function offeredSource(m: SdpMedia): OfferedSource {
  return { address: m.address, rtpPort: m.port, rtcpPort: m.rtcpPort ?? m.port + 1 };
}

export class Leg {
  private _descriptor: LegDescriptor;
  readonly pair: PortPair;
  readonly receiver: RtpLegReceiver;
  private srtp: LegSrtp | null = null;

  constructor(opts: { descriptor: LegDescriptor; offer: LegOffer; source: SourceMode; pair: PortPair; spool: SpoolWriter; counters: RtpCounters; log: Logger }) {
    this._descriptor = opts.descriptor;
    this.pair = opts.pair;
    // Spool records name the leg by its m-line index, as LegDescriptor.index does.
    this.receiver = new RtpLegReceiver({
      legIndex: opts.descriptor.index, pair: opts.pair, spool: opts.spool, formats: opts.descriptor.formats, counters: opts.counters, log: opts.log,
      source: { mode: opts.source, offered: offeredSource(opts.offer.media) },
    });
    this.setKeying(opts.offer.keying);
  }

  /** The m-line index in the offer: stable for the life of the call. */
  get index(): number {
    return this._descriptor.index;
  }

  get descriptor(): LegDescriptor {
    return this._descriptor;
  }

  /** The SRTP suite in use, or null for plain RTP. */
  get srtpSuite(): SrtpSuiteName | null {
    return this.srtp?.suite ?? null;
  }

  /** Our a=crypto value for the answer, when the leg is SRTP. */
  get answerCrypto(): string | undefined {
    return this.srtp?.answer;
  }

  /**
   * A re-offer for this m-line: the formats (a codec change), the source it names and its
   * keys follow; ports stay, so audio continues without a gap. Returns true when the keys
   * changed (a re-key, or a move between SRTP and plain RTP).
   */
  applyOffer(offer: LegOffer): boolean {
    // Packets that came before the re-offer are taken under the formats they were sent in.
    this.pair.drainRtp?.();
    this._descriptor = { ...this._descriptor, formats: offer.formats };
    this.receiver.setFormats(offer.formats);
    this.receiver.setOffered(offeredSource(offer.media));
    return this.setKeying(offer.keying);
  }

  private setKeying(keying: LegOffer['keying']): boolean {
    if (keying.kind === 'plain') {
      if (this.srtp === null) return false;
      this.srtp = null;
      this.receiver.setSrtp(null);
      return true;
    }
    if (this.srtp?.offered === keying.attribute) return false;
    const suite = SRTP_SUITES[keying.crypto.suite];
    const ours = randomBytes(suite.keyBytes + suite.saltBytes);
    const answer = buildCryptoAnswer(keying.crypto, ours);
    // Both policies and the sessions made from them copy the keys: ours is wiped here.
    this.receiver.setSrtp({ receive: keying.crypto.srtpPolicy(), send: answerPolicy(keying.crypto, ours) });
    ours.fill(0);
    this.srtp = { suite: suite.name, offered: keying.attribute, answer };
    return true;
  }

  /** Stops receiving; returns the port pair for the caller to release. */
  close(): PortPair {
    // The call's last packets, waiting for the next batched read, still go to the spool.
    this.pair.drainRtp?.();
    return this.receiver.close();
  }
}
