/**
 * Sends RTP like a real endpoint: 20 ms packets at real-time pace with accurate sequence
 * numbers and timestamps, a tone encoded as G.711 μ-law or A-law (or L16), from a loopback
 * socket (IPv6 when the host is an IPv6 address). It can also send RFC 4733 telephone-events
 * in place of audio, RFC 3389 comfort noise, and switch codec or SSRC mid-stream. With an
 * SRTP policy (`srtp`, or `setSrtp` for a re-key) every packet goes out protected
 * (src/rtp/srtp.ts protectRtp); `lastWire` keeps the last datagram sent, for tests that
 * replay or damage one.
 */
import { createSocket, type Socket } from 'node:dgram';
import { linearToAlaw, linearToUlaw } from '../../src/encoder/g711.js';
import { SrtpSession, type SrtpPolicy } from '../../src/rtp/srtp.js';

export interface RtpSenderOptions {
  readonly port: number;
  readonly host?: string;
  readonly toneHz: number;
  readonly payloadType?: number;
  readonly law?: 'PCMU' | 'PCMA';
  readonly ssrc?: number;
  readonly amplitude?: number;
  /** L16 (big-endian 16-bit) instead of G.711; `rate` then sets its clock. */
  readonly encoding?: 'G711' | 'L16';
  readonly rate?: number;
  /** Payload type of telephone-events (default 101). */
  readonly eventPayloadType?: number;
  /** Send SRTP under this policy (the offer's a=crypto as the daemon parses it). */
  readonly srtp?: SrtpPolicy;
  /** Bind to this local port instead of an ephemeral one. */
  readonly localPort?: number;
}

interface PendingEvent {
  readonly code: number;
  readonly startTs: number;
  readonly packets: number;
  sent: number;
  readonly done: () => void;
}

export class RtpSender {
  private socket: Socket | null = null;
  private seq = Math.floor(Math.random() * 60000);
  private ts = Math.floor(Math.random() * 1e9);
  private phase = 0;
  private timer: NodeJS.Timeout | null = null;
  packetsSent = 0;
  private ssrc: number;
  private payloadType: number;
  private law: 'PCMU' | 'PCMA';
  private event: PendingEvent | null = null;
  private srtp: SrtpSession | null = null;
  /** The last datagram sent, as it went on the wire. */
  lastWire: Buffer | null = null;
  /** Every packet sent, with the time it left (for tests that reason about timing). */
  readonly log: Array<{ at: number; kind: 'audio' | 'event' | 'cn' }> = [];

  constructor(readonly opts: RtpSenderOptions) {
    this.ssrc = opts.ssrc ?? Math.floor(Math.random() * 2 ** 32);
    this.payloadType = opts.payloadType ?? 0;
    this.law = opts.law ?? 'PCMU';
    if (opts.srtp) this.setSrtp(opts.srtp);
  }

  /** Protects every packet from now on under `policy` (a fresh SRTP context: a re-key), or plain with null. */
  setSrtp(policy: SrtpPolicy | null): void {
    this.srtp = policy ? new SrtpSession(policy) : null;
  }

  /** The next audio packet as it would go on the wire, not sent (its sequence number is used up). */
  nextWire(): Buffer {
    const b = this.packet();
    return this.srtp ? this.srtp.protectRtp(b) : b;
  }

  /** Sends one datagram as it is (a replayed or damaged packet). */
  sendRaw(buf: Buffer): void {
    this.socket!.send(buf, this.opts.port, this.host);
  }

  get host(): string {
    return this.opts.host ?? '127.0.0.1';
  }

  async open(): Promise<number> {
    const v6 = this.host.includes(':');
    const s = createSocket(v6 ? 'udp6' : 'udp4');
    await new Promise<void>((r) => s.bind(this.opts.localPort ?? 0, v6 ? '::1' : '127.0.0.1', () => r()));
    this.socket = s;
    return s.address().port;
  }

  private get rate(): number {
    return this.opts.encoding === 'L16' ? this.opts.rate ?? 8000 : 8000;
  }

  private header(len: number, pt: number, ts: number, marker = false): Buffer {
    const buf = Buffer.alloc(12 + len);
    buf[0] = 0x80;
    buf[1] = (pt & 0x7f) | (marker ? 0x80 : 0);
    buf.writeUInt16BE(this.seq & 0xffff, 2);
    buf.writeUInt32BE(ts >>> 0, 4);
    buf.writeUInt32BE(this.ssrc >>> 0, 8);
    return buf;
  }

  packet(): Buffer {
    const n = this.rate / 50;
    const l16 = this.opts.encoding === 'L16';
    const buf = this.header(l16 ? 2 * n : n, this.payloadType, this.ts);
    const amp = this.opts.amplitude ?? 8000;
    const enc = this.law === 'PCMA' ? linearToAlaw : linearToUlaw;
    for (let i = 0; i < n; i++) {
      const v = Math.round(amp * Math.sin(this.phase));
      if (l16) buf.writeInt16BE(v, 12 + 2 * i);
      else buf[12 + i] = enc(v);
      this.phase += (2 * Math.PI * this.opts.toneHz) / this.rate;
    }
    this.seq++;
    this.ts += n;
    return buf;
  }

  /** An RFC 3389 comfort-noise packet (payload type 13, noise level only). */
  comfortNoisePacket(): Buffer {
    const buf = this.header(1, 13, this.ts);
    buf[12] = 60;
    this.seq++;
    this.ts += this.rate / 50;
    return buf;
  }

  /** The next RFC 4733 packet(s) of the pending event: one per 20 ms, the end one three times. */
  private eventPackets(ev: PendingEvent): Buffer[] {
    ev.sent++;
    const end = ev.sent >= ev.packets;
    const buf = this.header(4, this.opts.eventPayloadType ?? 101, ev.startTs, ev.sent === 1);
    buf[12] = ev.code;
    buf[13] = (end ? 0x80 : 0) | 10;
    buf.writeUInt16BE(Math.min(0xffff, ev.sent * (this.rate / 50)), 14);
    this.seq++;
    // The stream's clock runs on under the event: audio after it resumes in place.
    this.ts += this.rate / 50;
    return end ? [buf, buf, buf] : [buf];
  }

  /**
   * Sends a telephone-event in place of audio for `durationMs` (RFC 4733 §2.5); resolves when
   * its end packets are out. `code` 0-9 are the digits, 10 '*', 11 '#'.
   */
  sendEvent(code: number, durationMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.event = { code, startTs: this.ts, packets: Math.max(1, Math.round(durationMs / 20)), sent: 0, done: resolve };
    });
  }

  /** Sends comfort noise instead of audio while `on` (a DTX pause of the sender). */
  comfortNoise = false;

  /** Changes codec (and SSRC, as a new media source would) from the next packet on. */
  switchTo(opts: { payloadType: number; law: 'PCMU' | 'PCMA'; ssrc?: number }): void {
    this.payloadType = opts.payloadType;
    this.law = opts.law;
    if (opts.ssrc !== undefined) {
      this.ssrc = opts.ssrc;
      this.seq = Math.floor(Math.random() * 60000);
      this.ts = Math.floor(Math.random() * 1e9);
    }
  }

  private sendNext(): void {
    const ev = this.event;
    let bufs: Buffer[];
    let kind: 'audio' | 'event' | 'cn' = 'audio';
    if (ev) {
      bufs = this.eventPackets(ev);
      kind = 'event';
      if (ev.sent >= ev.packets) {
        this.event = null;
        setImmediate(ev.done);
      }
    } else if (this.comfortNoise) {
      bufs = [this.comfortNoisePacket()];
      kind = 'cn';
    } else {
      bufs = [this.packet()];
    }
    for (const b of bufs) {
      const wire = this.srtp ? this.srtp.protectRtp(b) : b;
      this.lastWire = wire;
      this.socket!.send(wire, this.opts.port, this.host);
    }
    this.log.push({ at: Date.now(), kind });
  }

  /** Sends packets at 20 ms pace (drift-corrected) until stop(). */
  start(): void {
    const t0 = performance.now();
    let n = 0;
    const tick = () => {
      const due = Math.floor((performance.now() - t0) / 20) + 1;
      while (n < due) {
        this.sendNext();
        this.packetsSent++;
        n++;
      }
      this.timer = setTimeout(tick, 20 - ((performance.now() - t0) % 20));
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Skips time without sending (silence on the wire), keeping timestamps advancing. */
  skip(ms: number): void {
    const n = Math.round(ms / 20);
    this.seq += n;
    this.ts += n * (this.rate / 50);
  }

  close(): void {
    this.stop();
    this.socket?.close();
  }
}
