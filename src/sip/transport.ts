/**
 * The seam between the SIP user agent and the network. The user agent never opens a
 * socket: it is handed a Transport, which delivers each whole message with the Flow it
 * came on, and sends on a Flow. The daemon passes the socket transport
 * (socket-transport.ts); tests pass a fake one.
 */

/** Where a message came from, and how to answer on the same path. */
export interface Flow {
  readonly transport: 'UDP' | 'TCP';
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
}

export interface BoundListener {
  readonly transport: 'udp' | 'tcp';
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
