/**
 * The network transport: UDP datagrams and TCP streams (RFC 3261 §18), IPv4 and IPv6. It
 * hands whole messages up with their Flow and never interprets SIP; stream framing is the
 * StreamFramer's job. Keep-alives are handled here: CRLF-only datagrams are dropped, and a
 * CRLFCRLF ping on a stream is answered with a CRLF pong (RFC 5626 §3.5.1).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, createConnection, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import type { ListenSpec } from '../config/schema.js';
import { isKeepAlive, StreamFramer } from './framer.js';
import type { BoundListener, Flow, Transport, TransportSink } from './transport.js';

const PONG = Buffer.from('\r\n', 'latin1');
const TCP_IDLE_MS = 10 * 60_000;

export class SocketTransport implements Transport {
  private readonly udp: Array<{ socket: UdpSocket; address: string; port: number }> = [];
  private readonly tcp: Array<{ server: Server; address: string; port: number }> = [];
  private readonly connections = new Set<TcpSocket>();
  /** TCP connections by "address|port" of the peer, for sending requests back to it. */
  private readonly byRemote = new Map<string, TcpSocket>();

  private sink: TransportSink | null = null;

  constructor(
    private readonly specs: readonly ListenSpec[],
    private readonly maxMessageBytes: number,
  ) {}

  async start(sink: TransportSink): Promise<BoundListener[]> {
    this.sink = sink;
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
          if (isKeepAlive(msg)) return;
          const flow: Flow = {
            transport: 'UDP',
            local: { address: entry.address, port: entry.port },
            remote: { address: rinfo.address, port: rinfo.port },
            send: (data) => socket.send(data, rinfo.port, rinfo.address),
          };
          this.sink?.message(msg, flow);
        });
        resolve();
      });
    });
  }

  private startTcp(spec: ListenSpec): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((sock) => this.adopt(sock, { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 }));
      server.once('error', reject);
      server.listen(spec.port, spec.address, () => {
        server.off('error', reject);
        const a = server.address();
        if (a && typeof a === 'object') this.tcp.push({ server, address: a.address, port: a.port });
        resolve();
      });
    });
  }

  /** Takes a connection in: frames what it receives; `remote` is known before an outgoing one connects. */
  private adopt(sock: TcpSocket, remote: Flow['remote']): void {
    this.connections.add(sock);
    const key = `${remote.address}|${remote.port}`;
    this.byRemote.set(key, sock);
    sock.setNoDelay(true);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    const flow: Flow = {
      transport: 'TCP',
      local: { address: sock.localAddress ?? '', port: sock.localPort ?? 0 },
      remote,
      send: (data) => {
        if (!sock.destroyed) sock.write(data);
      },
    };
    const framer = new StreamFramer(this.maxMessageBytes);
    sock.on('data', (chunk: Buffer) => {
      const { frames, error } = framer.push(chunk);
      for (const f of frames) {
        if (f.kind === 'ping') flow.send(PONG);
        else this.sink?.message(f.data, flow);
      }
      if (error !== undefined) {
        this.sink?.framingError(error, flow);
        sock.destroy();
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.connections.delete(sock);
      if (this.byRemote.get(key) === sock) this.byRemote.delete(key);
    });
  }

  /**
   * The same TCP connection when one is open, a new one when not (its Via names `local`, our
   * listener, as it has no address before it connects), or the UDP socket bound to `local`.
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
      this.adopt(sock, remote);
    }
    const s = sock;
    return {
      transport: 'TCP',
      local: local ?? { address: s.localAddress ?? '', port: s.localPort ?? 0 },
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
