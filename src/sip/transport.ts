/**
 * The seam between the SIP user agent and the network. The user agent never opens a
 * socket: it is handed a Transport, which delivers each whole message with the Flow it
 * came on, and sends on a Flow. The daemon passes the socket transport
 * (socket-transport.ts); tests pass a fake one.
 */

/** Where a message came from, and how to answer on the same path. */
export interface Flow {
  readonly transport: 'UDP' | 'TCP' | 'TLS';
  readonly local: { readonly address: string; readonly port: number };
  readonly remote: { readonly address: string; readonly port: number };
  send(data: Buffer): void;
}

/** Where a transport delivers what it receives. */
export interface TransportSink {
  /** One whole message (a datagram, or one framed stream message). */
  message(data: Buffer, flow: Flow): void;
  /** A stream that could not be framed (oversized, bad Content-Length): it was closed. */
  framingError(reason: string, flow: Flow): void;
  /** A stream connection was refused or cut by the transport's own limits, before any message. */
  connectionRefused(reason: ConnectionRefusal, remote: Flow['remote']): void;
}

/**
 * Why the transport refused or closed a connection: over the per-source cap, silent past
 * the idle timeout, a message begun and not finished in time, a failed TLS handshake, or a
 * client certificate whose name is not allowed.
 */
export type ConnectionRefusal = 'connection_cap' | 'idle' | 'message_timeout' | 'tls_handshake' | 'client_name';

export interface BoundListener {
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly address: string;
  readonly port: number;
}

export interface Transport {
  /** Starts listening; from then on messages go to `sink`. */
  start(sink: TransportSink): Promise<BoundListener[]>;
  listeners(): BoundListener[];
  /**
   * A flow for sending a new request to `remote` (an in-dialog BYE): the same connection
   * or socket as `local` where there is one. Null when there is no way to send.
   */
  flowTo(transport: Flow['transport'], remote: Flow['remote'], local?: Flow['local']): Flow | null;
  close(): Promise<void>;
}
