/**
 * The network transport: UDP datagrams and TCP and TLS streams (RFC 3261 §18, §26.2), IPv4
 * and IPv6. It hands whole messages up with their Flow and never interprets SIP; stream
 * framing is the StreamFramer's job. Keep-alives are handled here: CRLF-only datagrams are
 * dropped, and a CRLFCRLF ping on a stream is answered with a CRLF pong (RFC 5626 §3.5.1).
 *
 * Streams are held on a short leash, so a peer cannot pin them (slowloris): at most
 * `maxConnectionsPerSource` open connections per source address, closed after `idleMs`
 * without traffic, or `messageMs` after a message began without it being whole; a TLS
 * handshake gets `messageMs` too. TLS is 1.2 or later; with mutual TLS the client
 * certificate must chain to the CA and, when names are listed, carry one of them.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, createConnection, isIPv6, type Server, type Socket as TcpSocket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { ListenSpec } from '../config/schema.js';
import { isKeepAlive, StreamFramer } from './framer.js';
import { clientNameAllowed, secureContextOptions, serverOptions, type TlsMaterial } from '../tls/material.js';
import type { BoundListener, ConnectionRefusal, Flow, Transport, TransportSink } from './transport.js';

const PONG = Buffer.from('\r\n', 'latin1');

export interface StreamLimits {
  readonly maxConnectionsPerSource: number;
  readonly idleMs: number;
  readonly messageMs: number;
}

export interface TlsSettings {
  readonly material: TlsMaterial;
  readonly requireClientCertificate: boolean;
  readonly allowedClientNames: readonly string[];
}

export interface SocketTransportOptions {
  readonly listen: readonly ListenSpec[];
  readonly maxMessageBytes: number;
  readonly limits: StreamLimits;
  /** Needed when `listen` has a tls: listener. */
  readonly tls?: TlsSettings;
}

type StreamTransport = 'TCP' | 'TLS';

export class SocketTransport implements Transport {
  private readonly udp: Array<{ socket: UdpSocket; address: string; port: number }> = [];
  private readonly streams: Array<{ server: Server | TlsServer; transport: StreamTransport; address: string; port: number }> = [];
  private readonly connections = new Set<TcpSocket>();
  /** Stream connections by "TRANSPORT|address|port" of the peer, for sending requests back to it. */
  private readonly byRemote = new Map<string, TcpSocket>();
  /** Open stream connections per source address. */
  private readonly perSource = new Map<string, number>();
  private tlsMaterial: TlsMaterial | undefined;

  private sink: TransportSink | null = null;

  constructor(private readonly opts: SocketTransportOptions) {
    this.tlsMaterial = opts.tls?.material;
  }

  async start(sink: TransportSink): Promise<BoundListener[]> {
    this.sink = sink;
    for (const spec of this.opts.listen) {
      if (spec.transport === 'udp') await this.startUdp(spec);
      else await this.startStream(spec);
    }
    return this.listeners();
  }

  listeners(): BoundListener[] {
    return [
      ...this.udp.map((u) => ({ transport: 'udp' as const, address: u.address, port: u.port })),
      ...this.streams.map((t) => ({ transport: t.transport === 'TLS' ? 'tls' as const : 'tcp' as const, address: t.address, port: t.port })),
    ];
  }

  /** New certificate, key and CA for the TLS listeners; connections open now keep theirs. */
  reloadTls(material: TlsMaterial): void {
    this.tlsMaterial = material;
    for (const s of this.streams) {
      if (s.transport === 'TLS') (s.server as TlsServer).setSecureContext(secureContextOptions(material));
    }
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

  private startStream(spec: ListenSpec): Promise<void> {
    const transport: StreamTransport = spec.transport === 'tls' ? 'TLS' : 'TCP';
    const remoteOf = (sock: TcpSocket) => ({ address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 });
    let server: Server | TlsServer;
    if (transport === 'TLS') {
      const tls = this.opts.tls;
      if (!tls || !this.tlsMaterial) throw new Error(`tls:${spec.address}:${spec.port} needs the [tls] certificate and key`);
      server = createTlsServer({ ...serverOptions(this.tlsMaterial, tls.requireClientCertificate), handshakeTimeout: this.opts.limits.messageMs }, (sock: TLSSocket) => {
        if (tls.requireClientCertificate && !clientNameAllowed(sock.getPeerCertificate(), tls.allowedClientNames)) {
          this.sink?.connectionRefused('client_name', remoteOf(sock));
          sock.destroy();
          return;
        }
        this.adopt(sock, 'TLS', remoteOf(sock));
      });
      server.on('tlsClientError', (_err, sock) => this.sink?.connectionRefused('tls_handshake', remoteOf(sock)));
    } else {
      server = createServer((sock) => this.adopt(sock, 'TCP', remoteOf(sock)));
    }
    // Every raw connection, before any TLS handshake, counts against its source's cap.
    server.on('connection', (raw: TcpSocket) => this.admit(raw));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(spec.port, spec.address, () => {
        server.off('error', reject);
        const a = server.address();
        if (a && typeof a === 'object') this.streams.push({ server, transport, address: a.address, port: a.port });
        resolve();
      });
    });
  }

  /** Counts a new connection against its source; over the cap it is closed at once. */
  private admit(raw: TcpSocket): void {
    const source = raw.remoteAddress ?? '';
    const open = this.perSource.get(source) ?? 0;
    if (open >= this.opts.limits.maxConnectionsPerSource) {
      this.sink?.connectionRefused('connection_cap', { address: source, port: raw.remotePort ?? 0 });
      raw.destroy();
      return;
    }
    this.perSource.set(source, open + 1);
    raw.once('close', () => {
      const n = (this.perSource.get(source) ?? 1) - 1;
      if (n <= 0) this.perSource.delete(source);
      else this.perSource.set(source, n);
    });
  }

  /** Takes a connection in: frames what it receives; `remote` is known before an outgoing one connects. */
  private adopt(sock: TcpSocket, transport: StreamTransport, remote: Flow['remote']): void {
    this.connections.add(sock);
    const key = `${transport}|${remote.address}|${remote.port}`;
    this.byRemote.set(key, sock);
    sock.setNoDelay(true);
    const cut = (reason: ConnectionRefusal) => {
      this.sink?.connectionRefused(reason, remote);
      sock.destroy();
    };
    sock.setTimeout(this.opts.limits.idleMs, () => cut('idle'));
    const flow: Flow = {
      transport,
      local: { address: sock.localAddress ?? '', port: sock.localPort ?? 0 },
      remote,
      send: (data) => {
        if (!sock.destroyed) sock.write(data);
      },
    };
    const framer = new StreamFramer(this.opts.maxMessageBytes);
    // Armed while a message is part-way in: a peer dribbling bytes keeps the idle timer
    // quiet but not this one.
    let unfinished: NodeJS.Timeout | undefined;
    sock.on('data', (chunk: Buffer) => {
      const { frames, error } = framer.push(chunk);
      for (const f of frames) {
        if (f.kind === 'ping') flow.send(PONG);
        else this.sink?.message(f.data, flow);
      }
      if (error !== undefined) {
        this.sink?.framingError(error, flow);
        sock.destroy();
        return;
      }
      if (framer.buffered === 0) {
        clearTimeout(unfinished);
        unfinished = undefined;
      } else if (unfinished === undefined) {
        unfinished = setTimeout(() => cut('message_timeout'), this.opts.limits.messageMs);
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      clearTimeout(unfinished);
      this.connections.delete(sock);
      if (this.byRemote.get(key) === sock) this.byRemote.delete(key);
    });
  }

  /**
   * The same stream connection when one is open, a new one when not (its Via names `local`,
   * our listener, as it has no address before it connects), or the UDP socket bound to
   * `local`. A new TLS connection verifies the peer against the [tls] CA.
   */
  flowTo(transport: Flow['transport'], remote: Flow['remote'], local?: Flow['local']): Flow | null {
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
    let sock = this.byRemote.get(`${transport}|${remote.address}|${remote.port}`);
    if (!sock || sock.destroyed) {
      if (transport === 'TLS') {
        if (!this.tlsMaterial) return null;
        sock = tlsConnect({ host: remote.address, port: remote.port, ...secureContextOptions(this.tlsMaterial) });
      } else {
        sock = createConnection({ host: remote.address, port: remote.port });
      }
      this.adopt(sock, transport, remote);
    }
    const s = sock;
    return {
      transport,
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
    const closing = this.streams.map((t) => new Promise<void>((r) => t.server.close(() => r())));
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    await Promise.all(closing);
    this.streams.length = 0;
  }
}
