/**
 * The receiving end of one recorded leg: listens on a PortPair, validates each RTP packet,
 * keeps the leg's RFC 3550 statistics (LegReception, the same counting the encoder does for
 * the stored leg figures), appends every accepted packet with its arrival time to
 * the call's spool, and sends RTCP receiver reports back to the sender.
 *
 * The per-packet path is direct calls only: parse into a reused header, look the payload
 * type up in a 128-slot table, update the source's counters, one memcpy into the spool
 * chunk. No event, no log line, no allocation beyond the datagram Node already made.
 *
 * Sources: the leg's SourceFilter (`[rtp] source`, latch or strict) says which address a
 * packet may come from; it is asked first, before anything is spent on the packet. The
 * accepted source is where reports go (its port + 1) until RTCP actually arrives; from then
 * on reports go where RTCP came from, through the socket it came in on (so muxed RTCP, RFC
 * 5761, gets muxed reports).
 *
 * SRTP: with keys set (`setSrtp`), every datagram is authenticated and decrypted in place
 * (src/rtp/srtp.ts) before it is parsed; a failure is counted as `srtp_<reason>` and the
 * datagram dropped. The spool gets the decrypted packet. Our reports go out as SRTCP under
 * our own (answer) key. A re-key replaces both sessions.
 */
import { randomBytes } from 'node:crypto';
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { RecordType } from '../spool/format.js';
import type { SpoolWriter } from '../spool/writer.js';
import type { MediaFormat } from '../types.js';
import type { Logger } from '../log.js';
import { looksLikeRtcp, newRtpHeader, readRtpHeader, type RtpHeader } from './packet.js';
import { SRTP_DROP_REASONS, SrtpSession, type SrtpDropReason, type SrtpPolicy } from './srtp.js';
import { SourceFilter, type OfferedSource, type SourceMode } from './source-filter.js';
import { buildReceiverReport, parseRtcp, type ReportBlock } from './rtcp.js';
import { jitterClockRate, LegReception, MAX_SOURCES_PER_LEG } from './stats.js';
import { rtpCounters, type DropReason, type LegJitterSource, type RtpCounters } from './counters.js';
import type { PortPair } from './ports.js';
import { Stage, stageBegin, stageEnd, stageTimed } from '../stage-clock.js';

/** RFC 3550 §6.2 minimum interval; we are one receiver in a two-party session. */
export const RTCP_REPORT_INTERVAL_MS = 5000;
/**
 * One CNAME for the whole process: RFC 3550 §6.5.1 wants it stable per endpoint and unique.
 * Random, so it names neither the host's users nor anybody on the call.
 */
const PROCESS_CNAME = `tallenne@${randomBytes(6).toString('hex')}`;

export interface RtpLegReceiverOptions {
  legIndex: number;
  pair: PortPair;
  spool: SpoolWriter;
  formats: readonly MediaFormat[];
  counters?: RtpCounters;
  /** Epoch milliseconds, fractional allowed. */
  now?: () => number;
  log?: Logger;
  /** Mean interval between receiver reports (randomised 0.5–1.5×). */
  rtcpIntervalMs?: number;
  /** Our SSRC in reports; random when absent. */
  ssrc?: number;
  cname?: string;
  /** `[rtp] source` and where the offer says media comes from; latch from anyone when absent. */
  source?: { mode: SourceMode; offered: OfferedSource };
  /** SRTP keys, when the m-line is SRTP. */
  srtp?: LegSrtpKeys;
}

/** The two SRTP policies of a leg: what the offerer sends us, and our own reports. */
export interface LegSrtpKeys {
  /** Keyed by the offer's a=crypto. */
  receive: SrtpPolicy;
  /** Keyed by our answer's a=crypto. */
  send: SrtpPolicy;
}

const SRTP_DROP = Object.fromEntries(SRTP_DROP_REASONS.map((r) => [r, `srtp_${r}`])) as Record<SrtpDropReason, DropReason>;

interface Peer {
  address: string;
  port: number;
  /** RTCP came in on the RTP socket (RFC 5761 mux): answer on it too. */
  muxed: boolean;
}

/**
 * The arrival clock of spooled packets (epoch ms from the monotonic clock). Whoever compares a
 * time with spooled arrival times (the live listener) reads this clock, not Date.now(): the
 * two can drift apart by seconds while the wall clock is adjusted.
 */
export const epochNow = (): number => performance.timeOrigin + performance.now();

export class RtpLegReceiver implements LegJitterSource {
  readonly legIndex: number;
  readonly ssrc: number;
  private readonly pair: PortPair;
  private readonly spool: SpoolWriter;
  private readonly counters: RtpCounters;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly intervalMs: number;
  private readonly cname: string;

  private readonly header: RtpHeader = newRtpHeader();
  private ptTable: Array<MediaFormat | undefined> = new Array<MediaFormat | undefined>(128);
  private paused = false;
  private closed = false;

  /** The leg's RFC 3550 statistics, over every valid packet (spooled or dropped while paused). */
  readonly reception = new LegReception(MAX_SOURCES_PER_LEG);
  /** Loss already added to the process counter. */
  private lostReported = 0;

  private lastAccepted: number | null = null;
  private lastHeard: number | null = null;

  private rtcpPeer: Peer | null = null;
  private started = false;
  private readonly sources: SourceFilter;
  private srtpIn: SrtpSession | null = null;
  private srtpOut: SrtpSession | null = null;
  private reportTimer: NodeJS.Timeout | null = null;

  private readonly onRtpMessage = stageTimed(Stage.captureRtp, (msg: Buffer, rinfo: dgram.RemoteInfo): void => this.handleRtp(msg, rinfo.address, rinfo.port, this.now()));
  /** Batched receive (PortPair.readRtp): a datagram cut short at its slot is dropped, never parsed. */
  private readonly onRtpDatagram = stageTimed(Stage.captureRtp, (msg: Buffer, address: string, port: number, truncated: boolean, at: number): void => {
    if (truncated) this.drop('too_long');
    else this.handleRtp(msg, address, port, this.kernelTime ? at : this.now());
  });
  /** Batched datagrams are dated by the kernel's receive time, unless a clock was given (tests). */
  private readonly kernelTime: boolean;
  private readonly onRtcpMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => this.handleRtcp(msg, rinfo.address, rinfo.port, false);
  /** Ends the RTP socket's reading for this leg (batched, or Node's 'message' events). */
  private readonly stopRtp: () => void;

  constructor(opts: RtpLegReceiverOptions) {
    this.legIndex = opts.legIndex;
    this.pair = opts.pair;
    this.spool = opts.spool;
    this.counters = opts.counters ?? rtpCounters;
    this.now = opts.now ?? epochNow;
    this.kernelTime = opts.now === undefined;
    this.log = opts.log;
    this.intervalMs = opts.rtcpIntervalMs ?? RTCP_REPORT_INTERVAL_MS;
    this.ssrc = (opts.ssrc ?? randomBytes(4).readUInt32BE(0)) >>> 0;
    this.cname = opts.cname ?? PROCESS_CNAME;
    this.setFormats(opts.formats);
    this.sources = new SourceFilter(opts.source?.mode ?? 'latch', opts.source?.offered ?? { address: null, rtpPort: 0, rtcpPort: 0 });
    this.setSrtp(opts.srtp ?? null);
    let stop: (() => void) | null = null;
    if (this.pair.readRtp) {
      try {
        stop = this.pair.readRtp(this.onRtpDatagram);
      } catch (err) {
        // The socket could not be read in batches (its descriptor could not be had): Node reads it.
        this.log?.warn({ leg: this.legIndex, err: (err as Error).message }, 'batched receive refused this leg\'s socket; Node reads it');
      }
    }
    if (!stop) {
      this.pair.rtp.on('message', this.onRtpMessage);
      stop = () => this.pair.rtp.removeListener('message', this.onRtpMessage);
    }
    this.stopRtp = stop;
    this.pair.rtcp.on('message', this.onRtcpMessage);
    this.counters.activeLegs.add(this);
  }

  /** Replaces the accepted payload types (after a re-INVITE changed the codec). */
  setFormats(formats: readonly MediaFormat[]): void {
    const table = new Array<MediaFormat | undefined>(128);
    for (const f of formats) if (f.pt >= 0 && f.pt < 128) table[f.pt] = f;
    this.ptTable = table;
  }

  /** A re-offer named where media now comes from. */
  setOffered(offered: OfferedSource): void {
    this.sources.setOffered(offered);
  }

  /**
   * Sets (or, with null, clears) the SRTP keys. New sessions start with fresh rollover
   * counters and replay windows: what the new keys protect is a new SRTP context.
   */
  setSrtp(keys: LegSrtpKeys | null): void {
    this.srtpIn = keys ? new SrtpSession(keys.receive) : null;
    this.srtpOut = keys ? new SrtpSession(keys.send) : null;
  }

  /** While paused, RTP is counted in the statistics but dropped ('paused'), not spooled. */
  setPaused(paused: boolean): void {
    this.paused = paused;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Epoch ms of the last RTP packet accepted into the spool, or null. */
  get lastPacketAt(): number | null {
    return this.lastAccepted;
  }

  /** Epoch ms of the last valid RTP packet, spooled or dropped because paused: media is flowing. */
  get lastHeardAt(): number | null {
    return this.lastHeard;
  }

  /** Current SSRC's jitter in ms (read by the metrics module through counters.activeLegs). */
  get jitterMs(): number {
    return this.reception.jitterMs;
  }

  /**
   * Stops listening and reporting. The sockets stay open and owned by the caller, who gets
   * the pair back and must hand it to PortAllocator.release(). Idempotent.
   */
  close(): PortPair {
    if (this.closed) return this.pair;
    this.closed = true;
    this.stopRtp();
    this.pair.rtcp.removeListener('message', this.onRtcpMessage);
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    this.publishLoss();
    this.counters.activeLegs.delete(this);
    if (this.reception.current) this.counters.jitterObservations.push(this.reception.jitterMs);
    return this.pair;
  }

  private drop(reason: DropReason): void {
    this.counters.dropped[reason]++;
  }

  /** One datagram on the RTP port, received at `now` (epoch ms). */
  private handleRtp(msg: Buffer, address: string, port: number, now: number): void {
    if (looksLikeRtcp(msg)) {
      this.handleRtcp(msg, address, port, true, now);
      return;
    }
    // The SSRC is in the clear under SRTP too; a datagram too short for one gets 0 here
    // and is refused by the checks below.
    const ssrc = msg.length >= 12 ? msg.readUInt32BE(8) : 0;
    const wrong = this.sources.checkRtp(address, port, ssrc, now);
    if (wrong) return this.drop(wrong);
    if (this.srtpIn) {
      const r = this.srtpIn.unprotectRtp(msg);
      if (!r.ok) return this.drop(SRTP_DROP[r.reason]);
      msg = r.packet;
    }
    const h = this.header;
    const bad = readRtpHeader(msg, msg.length, h);
    if (bad) return this.drop(bad);
    const format = this.ptTable[h.payloadType];
    if (!format) return this.drop('unknown_payload_type');

    const known = this.reception.ssrcs;
    this.reception.update(h.ssrc, h.sequence, h.timestamp, now, jitterClockRate(format));
    if (this.reception.ssrcs !== known && known > 0) this.counters.ssrcChanges++;
    this.lastHeard = now;
    this.sources.accepted(address, port, h.ssrc, now);
    if (!this.started) this.firstPacket();

    if (this.paused) return this.drop('paused');
    const ts = stageBegin(Stage.spoolAppend);
    this.spool.appendPacket(RecordType.Rtp, this.legIndex, now, msg);
    stageEnd(Stage.spoolAppend, ts);
    this.lastAccepted = now;
    this.counters.packets++;
    this.counters.bytes += msg.length;
  }

  /** Reports start with the first accepted packet, once (a re-latch does not start a second timer). */
  private firstPacket(): void {
    this.started = true;
    this.log?.debug({ leg: this.legIndex, port: this.pair.port }, 'first rtp packet');
    this.scheduleReport();
  }

  private handleRtcp(msg: Buffer, address: string, port: number, muxed: boolean, now = this.now()): void {
    const wrong = this.sources.checkRtcp(address, port);
    if (wrong) return this.drop(wrong);
    if (this.srtpIn) {
      const r = this.srtpIn.unprotectRtcp(msg);
      if (!r.ok) return this.drop(SRTP_DROP[r.reason]);
      msg = r.packet;
    }
    const packets = parseRtcp(msg);
    if (!packets) return this.drop('rtcp_malformed');
    this.spool.appendPacket(RecordType.Rtcp, this.legIndex, now, msg);
    this.counters.rtcp++;
    const peer = this.rtcpPeer;
    if (!peer || peer.address !== address || peer.port !== port || peer.muxed !== muxed) {
      this.rtcpPeer = { address, port, muxed };
    }
    for (const p of packets) {
      if (p.type !== 'sr') continue;
      this.reception.source(p.ssrc)?.onSenderReport({
        ntpSeconds: p.ntpSeconds, ntpFraction: p.ntpFraction, rtpTimestamp: p.rtpTimestamp, arrivalMs: now,
      });
    }
  }

  private scheduleReport(): void {
    if (this.closed || this.intervalMs <= 0) return;
    // RFC 3550 §6.3.1: randomise over [0.5, 1.5] of the interval so reports of many
    // sessions started together do not stay in step.
    const delay = this.intervalMs * (0.5 + Math.random());
    this.reportTimer = setTimeout(() => {
      this.reportTimer = null;
      this.sendReport();
      this.scheduleReport();
    }, delay);
    this.reportTimer.unref();
  }

  private sendReport(): void {
    if (this.closed) return;
    const now = this.now();
    const blocks: ReportBlock[] = [];
    for (const s of this.reception.tracked()) if (s.valid && s.heardSinceReport) blocks.push(s.reportBlock(now));
    this.publishLoss();
    const dest = this.reportDestination();
    if (!dest) return;
    const plain = buildReceiverReport(this.ssrc, this.cname, blocks);
    const packet = this.srtpOut ? this.srtpOut.protectRtcp(plain) : plain;
    try {
      dest.socket.send(packet, dest.port, dest.address, (err) => {
        if (err) this.log?.debug({ leg: this.legIndex, err: err.message }, 'rtcp report not sent');
        else this.counters.rtcpSent++;
      });
    } catch (err) {
      // The caller released the sockets before closing us; nothing to report to any more.
      this.log?.debug({ leg: this.legIndex, err: (err as Error).message }, 'rtcp report not sent');
    }
  }

  private reportDestination(): { socket: dgram.Socket; address: string; port: number } | null {
    const rtcp = this.rtcpPeer;
    if (rtcp) return { socket: rtcp.muxed ? this.pair.rtp : this.pair.rtcp, address: rtcp.address, port: rtcp.port };
    const rtp = this.sources.source;
    if (!rtp || rtp.port >= 65535) return null;
    return { socket: this.pair.rtcp, address: rtp.address, port: rtp.port + 1 };
  }

  /** Adds loss not yet counted to the process counter; late packets never make it go down. */
  private publishLoss(): void {
    const lost = this.reception.lost;
    if (lost > this.lostReported) {
      this.counters.lost += lost - this.lostReported;
      this.lostReported = lost;
    }
  }
}
