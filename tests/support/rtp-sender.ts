/**
 * Sends RTP like a real endpoint: 20 ms packets at real-time pace with accurate sequence
 * numbers and timestamps, a tone encoded as G.711 μ-law or A-law, from a loopback socket.
 */
import { createSocket, type Socket } from 'node:dgram';

export function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function linearToAlaw(sample: number): number {
  let s = Math.max(-32767, Math.min(32767, sample));
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = exponent === 0 ? (s >> 4) & 0x0f : (s >> (exponent + 3)) & 0x0f;
  return (sign | (exponent << 4) | mantissa) ^ 0x55;
}

export interface RtpSenderOptions {
  readonly port: number;
  readonly host?: string;
  readonly toneHz: number;
  readonly payloadType?: number;
  readonly law?: 'PCMU' | 'PCMA';
  readonly ssrc?: number;
  readonly amplitude?: number;
}

export class RtpSender {
  private socket: Socket | null = null;
  private seq = Math.floor(Math.random() * 60000);
  private ts = Math.floor(Math.random() * 1e9);
  private phase = 0;
  private timer: NodeJS.Timeout | null = null;
  packetsSent = 0;
  private readonly ssrc: number;

  constructor(readonly opts: RtpSenderOptions) {
    this.ssrc = opts.ssrc ?? Math.floor(Math.random() * 2 ** 32);
  }

  async open(): Promise<number> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    this.socket = s;
    return s.address().port;
  }

  packet(): Buffer {
    const buf = Buffer.alloc(12 + 160);
    buf[0] = 0x80;
    buf[1] = (this.opts.payloadType ?? 0) & 0x7f;
    buf.writeUInt16BE(this.seq & 0xffff, 2);
    buf.writeUInt32BE(this.ts >>> 0, 4);
    buf.writeUInt32BE(this.ssrc >>> 0, 8);
    const amp = this.opts.amplitude ?? 8000;
    const enc = this.opts.law === 'PCMA' ? linearToAlaw : linearToUlaw;
    for (let i = 0; i < 160; i++) {
      buf[12 + i] = enc(Math.round(amp * Math.sin(this.phase)));
      this.phase += (2 * Math.PI * this.opts.toneHz) / 8000;
    }
    this.seq++;
    this.ts += 160;
    return buf;
  }

  /** Sends packets at 20 ms pace (drift-corrected) until stop(). */
  start(): void {
    const t0 = performance.now();
    let n = 0;
    const tick = () => {
      const due = Math.floor((performance.now() - t0) / 20) + 1;
      while (n < due) {
        this.socket!.send(this.packet(), this.opts.port, this.opts.host ?? '127.0.0.1');
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
    this.ts += n * 160;
  }

  close(): void {
    this.stop();
    this.socket?.close();
  }
}
