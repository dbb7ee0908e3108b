/**
 * Hands out RTP/RTCP socket pairs from the configured port range: an even port for RTP and
 * the next one for RTCP (RFC 3550 §11), both already bound, so a port in the SDP answer is a
 * port we really hold.
 *
 * Allocation is round-robin: the search starts after the last pair handed out, so a port
 * released at the end of one call is not offered again at once, and late packets of the old
 * call do not land in the new one. Ports another process holds (EADDRINUSE) are skipped.
 *
 * Each RTP socket asks the kernel for `receiveBuffer` bytes of receive buffer: while the
 * capture thread is held up, a leg's packets wait there, and what does not fit is lost. The
 * kernel's default (about 200 KiB, some 250 packets of G.711 on loopback) is seconds of one
 * leg but not of a thousand calls' set-ups at once.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { TallenneError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BatchReceiver, DatagramHandler } from './batch-receive.js';

export interface PortPair {
  /** The RTP port; always even. RTCP is on port + 1. */
  readonly port: number;
  readonly rtp: dgram.Socket;
  readonly rtcp: dgram.Socket;
  /**
   * With batched receive: reads the RTP socket into `handler` until the returned stop (or
   * the pair's release). Absent: the RTP socket's datagrams come as Node's 'message' events.
   */
  readonly readRtp?: (handler: DatagramHandler) => () => void;
  /**
   * With batched receive: hands over now what waits on this pair's RTP socket (reads are up to
   * 40 ms apart), before the signalling changes the leg; the other sockets keep their wake-ups. Absent: Node hands each datagram over as it
   * comes.
   */
  readonly drainRtp?: () => void;
}

export interface PortAllocatorOptions {
  address: string;
  min: number;
  max: number;
  /** SO_RCVBUF asked for each RTP socket (bytes); absent: the kernel's default. */
  receiveBuffer?: number;
  /** Batched receive (rtp.receive): the RTP sockets are read through it. */
  batch?: BatchReceiver;
  log?: Logger;
}

export class PortAllocator {
  readonly address: string;
  private readonly first: number;
  private readonly pairs: number;
  /** Index of the pair where the next search starts. */
  private cursor = 0;
  /** RTP ports held by calls, or being bound right now. */
  private readonly held = new Set<number>();
  private readonly type: 'udp4' | 'udp6';
  private readonly log: Logger | undefined;
  private readonly receiveBuffer: number | undefined;
  /** The kernel's answer to the first receive buffer asked for was checked (and any cap logged). */
  private bufferChecked = false;
  private readonly batch: BatchReceiver | undefined;
  /** Batched reads in progress, by RTP port: stopped before the socket is closed. */
  private readonly reading = new Map<number, () => void>();

  constructor(opts: PortAllocatorOptions) {
    const first = opts.min % 2 === 0 ? opts.min : opts.min + 1;
    if (!Number.isInteger(opts.min) || !Number.isInteger(opts.max) || first + 1 > opts.max || opts.max > 65535) {
      throw new RangeError(`RTP port range ${opts.min}-${opts.max} holds no even/odd pair`);
    }
    this.address = opts.address;
    this.first = first;
    this.pairs = Math.floor((opts.max - first + 1) / 2);
    this.type = isIPv6(opts.address) ? 'udp6' : 'udp4';
    this.log = opts.log;
    this.receiveBuffer = opts.receiveBuffer;
    this.batch = opts.batch;
  }

  /** Pairs the range holds. */
  get total(): number {
    return this.pairs;
  }

  /** Pairs held by calls (or being bound). */
  get inUse(): number {
    return this.held.size;
  }

  /** Whether the RTP sockets are read in batches (rtp.receive). */
  get batched(): boolean {
    return this.batch !== undefined;
  }

  /** Batches of datagrams read so far (batched receive; packets ÷ batches is datagrams per wake-up). */
  get batchesRead(): number {
    return this.batch?.batches ?? 0;
  }

  /**
   * Binds the next free pair. Throws TALLENNE_NO_PORTS when every pair of the range is held
   * by us or busy elsewhere; rethrows any bind error other than EADDRINUSE/EACCES (a wrong
   * address would fail on every port, so trying the rest is pointless).
   */
  async allocatePair(): Promise<PortPair> {
    for (let tried = 0; tried < this.pairs; tried++) {
      const index = this.cursor;
      this.cursor = (this.cursor + 1) % this.pairs;
      const port = this.first + index * 2;
      if (this.held.has(port)) continue;
      // Reserve before the first await so a concurrent allocation cannot pick the same pair.
      this.held.add(port);
      let rtp: dgram.Socket | null = null;
      try {
        rtp = await this.bind(port, this.receiveBuffer);
        this.checkBuffer(rtp);
        const rtcp = await this.bind(port + 1);
        const batch = this.batch;
        if (!batch) return { port, rtp, rtcp };
        const socket = rtp;
        const readRtp = (handler: DatagramHandler): (() => void) => {
          this.reading.get(port)?.();
          const stop = batch.read(socket, handler);
          const once = (): void => {
            if (this.reading.get(port) === once) this.reading.delete(port);
            stop();
          };
          this.reading.set(port, once);
          return once;
        };
        return { port, rtp, rtcp, readRtp, drainRtp: () => batch.drainNow(socket) };
      } catch (err) {
        this.held.delete(port);
        if (rtp) rtp.close();
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
        this.log?.debug({ port, code }, 'rtp port busy, skipped');
      }
    }
    throw new TallenneError('TALLENNE_NO_PORTS', `no free RTP port pair in ${this.first}-${this.first + this.pairs * 2 - 1} on ${this.address} (${this.held.size} held by calls)`);
  }

  /** Closes both sockets and frees the pair. Idempotent. */
  release(pair: PortPair): void {
    // A batched read must end before its descriptor is closed (and reused by another socket).
    this.reading.get(pair.port)?.();
    closeQuietly(pair.rtp);
    closeQuietly(pair.rtcp);
    this.held.delete(pair.port);
  }

  /** Says once when the kernel gave the RTP sockets less receive buffer than asked (Linux reports twice what it grants). */
  private checkBuffer(socket: dgram.Socket): void {
    if (this.bufferChecked || this.receiveBuffer === undefined) return;
    this.bufferChecked = true;
    let granted: number;
    try {
      granted = socket.getRecvBufferSize() / 2;
    } catch {
      return;
    }
    if (granted < this.receiveBuffer) {
      this.log?.warn({ asked: this.receiveBuffer, granted }, 'the kernel caps the RTP sockets\' receive buffer below rtp.receive_buffer; raise net.core.rmem_max for more room');
    }
  }

  private bind(port: number, receiveBuffer?: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: this.type, reuseAddr: false, ...(receiveBuffer !== undefined ? { recvBufferSize: receiveBuffer } : {}) });
      const onError = (err: Error): void => {
        socket.removeListener('listening', onListening);
        closeQuietly(socket);
        reject(err);
      };
      const onListening = (): void => {
        socket.removeListener('error', onError);
        // A socket error after bind (rare for UDP: ENOBUFS on send, say) must not crash the
        // daemon through an unhandled 'error' event; the receiver counts what it cares about.
        socket.on('error', (e) => this.log?.debug({ port, err: e.message }, 'rtp socket error'));
        resolve(socket);
      };
      socket.once('error', onError);
      socket.once('listening', onListening);
      socket.bind({ port, address: this.address, exclusive: true });
    });
  }
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed: release() is idempotent by design.
  }
}
