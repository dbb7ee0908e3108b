/**
 * SIP transports: UDP datagrams and TCP streams (RFC 3261 §18), IPv4 and IPv6. The
 * transport frames messages and hands raw buffers up; it never interprets SIP beyond the
 * Content-Length needed for stream framing. A Flow says where a message came from and how
 * to answer on the same path (same socket, same TCP connection).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, createConnection, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import type { ListenSpec } from '../config/schema.js';
import { headerEnd } from './message.js';

export interface Flow {
  readonly transport: 'UDP' | 'TCP';
  readonly local: { readonly address: string; readonly port: number };
  readonly remote: { readonly address: string; readonly port: number };
  send(data: Buffer): void;
}

export interface TransportEvents {
  message(data: Buffer, flow: Flow): void;
  /** A stream that could not be framed (oversized or bad Content-Length): it was closed. */
  framingError(reason: string, flow: Flow): void;
}

export interface BoundListener {
  readonly transport: 'udp' | 'tcp';
  readonly address: string;
  readonly port: number;
}

const TCP_IDLE_MS = 10 * 60_000;

export class SipTransport {
  private readonly udp: Array<{ socket: UdpSocket; address: string; port: number }> = [];
  private readonly tcp: Array<{ server: Server; address: string; port: number }> = [];
  private readonly connections = new Set<TcpSocket>();
  /** TCP connections by "address|port" of the peer, for sending requests back to it. */
  private readonly byRemote = new Map<string, TcpSocket>();

  constructor(
    private readonly specs: readonly ListenSpec[],
    private readonly events: TransportEvents,
    private readonly maxMessageBytes: number,
  ) {}

  async start(): Promise<BoundListener[]> {
    for (const spec of this.specs) {
      if (spec.transport === 'udp') await this.startUdp(spec);
      else await this.startTcp(spec);
    }
    return this.listeners();
  }

  listeners(): BoundListener[] {
    return [
      ...this.udp.map((u) => ({ transport: 'udp' as const, address: u.address, port: u.port })),
      ...this.tcp.map((t) => ({ transport: 'tcp' as const, address: t.address, port: t.port })),
    ];
  }

  private startUdp(spec: ListenSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = createSocket({ type: isIPv6(spec.address) ? 'udp6' : 'udp4', reuseAddr: false });
      socket.once('error', reject);
      socket.bind(spec.port, spec.address, () => {
        socket.off('error', reject);
        socket.on('error', () => {
          /* ICMP errors from dead peers surface here; they must not stop the listener */
        });
        const a = socket.address();
        const entry = { socket, address: a.address, port: a.port };
        this.udp.push(entry);
        socket.on('message', (msg, rinfo) => {
          const flow: Flow = {
            transport: 'UDP',
            local: { address: entry.address, port: entry.port },
            remote: { address: rinfo.address, port: rinfo.port },
            send: (data) => socket.send(data, rinfo.port, rinfo.address),
          };
          this.events.message(msg, flow);
        });
        resolve();
      });
    });
  }

  private startTcp(spec: ListenSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => this.adopt(sock, server));
      server.once('error', reject);
      server.listen(spec.port, spec.address, () => {
        server.off('error', reject);
        const a = server.address();
        if (a && typeof a === 'object') this.tcp.push({ server, address: a.address, port: a.port });
        resolve();
      });
    });
  }

  private adopt(sock: TcpSocket, server: Server | null): void {
    void server;
    this.connections.add(sock);
    const key = `${sock.remoteAddress}|${sock.remotePort}`;
    this.byRemote.set(key, sock);
    sock.setNoDelay(true);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    const flow: Flow = {
      transport: 'TCP',
      local: { address: sock.localAddress ?? '', port: sock.localPort ?? 0 },
      remote: { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 },
      send: (data) => {
        if (!sock.destroyed) sock.write(data);
      },
    };
    let pending: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        // Keep-alive CRLFs between messages (RFC 5626 §3.5.1).
        let skip = 0;
        while (skip < pending.length && (pending[skip] === 0x0d || pending[skip] === 0x0a)) skip++;
        if (skip > 0) pending = pending.subarray(skip);
        if (pending.length === 0) return;
        const end = headerEnd(pending, 0, Math.min(pending.length, this.maxMessageBytes));
        if (end < 0) {
          if (pending.length > this.maxMessageBytes) return this.dropStream(sock, flow, 'headers exceed the message size limit');
          return;
        }
        const head = pending.toString('latin1', 0, end);
        const m = /\r\n(?:content-length|l)[ \t]*:[ \t]*(\d{1,9})[ \t]*\r\n/i.exec(head);
        if (!m) return this.dropStream(sock, flow, 'no Content-Length on a stream transport');
        const total = end + Number(m[1]);
        if (total > this.maxMessageBytes) return this.dropStream(sock, flow, `message of ${total} bytes exceeds the limit`);
        if (pending.length < total) return;
        const message = pending.subarray(0, total);
        pending = pending.subarray(total);
        this.events.message(Buffer.from(message), flow);
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.connections.delete(sock);
      if (this.byRemote.get(key) === sock) this.byRemote.delete(key);
    });
  }

  private dropStream(sock: TcpSocket, flow: Flow, reason: string): void {
    this.events.framingError(reason, flow);
    sock.destroy();
  }

  /**
   * A flow for sending a request to `remote` (an in-dialog BYE): the same TCP connection
   * when one is open, a new one when not, or the UDP socket bound to the local address.
   */
  flowTo(transport: 'UDP' | 'TCP', remote: { address: string; port: number }, local?: { address: string; port: number }): Flow | null {
    if (transport === 'UDP') {
      const u = (local && this.udp.find((x) => x.address === local.address && x.port === local.port)) ??
        this.udp.find((x) => isIPv6(x.address) === isIPv6(remote.address)) ?? this.udp[0];
      if (!u) return null;
      return {
        transport: 'UDP',
        local: { address: u.address, port: u.port },
        remote,
        send: (data) => u.socket.send(data, remote.port, remote.address),
      };
    }
    let sock = this.byRemote.get(`${remote.address}|${remote.port}`);
    if (!sock || sock.destroyed) {
      sock = createConnection({ host: remote.address, port: remote.port });
      this.adopt(sock, null);
    }
    const s = sock;
    return {
      transport: 'TCP',
      local: { address: s.localAddress ?? '', port: s.localPort ?? 0 },
      remote,
      send: (data) => {
        if (!s.destroyed) s.write(data);
      },
    };
  }

  async close(): Promise<void> {
    for (const u of this.udp) u.socket.close();
    this.udp.length = 0;
    const closing = this.tcp.map((t) => new Promise<void>((r) => t.server.close(() => r())));
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    await Promise.all(closing);
    this.tcp.length = 0;
  }
}
