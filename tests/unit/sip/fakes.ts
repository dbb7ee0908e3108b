/**
 * Test doubles for the SIP user agent's seams: a clock whose time moves only when the test
 * says, and a transport that records what the user agent sends and delivers what the test
 * writes, with no sockets.
 */
import type { Clock, Timer } from '../../../src/sip/clock.js';
import { firstHeader, parseSipMessage, type SipMessage, type SipRequest, type SipResponse } from '../../../src/sip/message.js';
import type { BoundListener, Flow, Transport, TransportSink } from '../../../src/sip/transport.js';

export class FakeClock implements Clock {
  now = 0;
  private seq = 0;
  private readonly timers: Array<{ at: number; seq: number; fn: () => void; cancelled: boolean }> = [];

  setTimer(ms: number, fn: () => void): Timer {
    const t = { at: this.now + ms, seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return { cancel: () => { t.cancelled = true; } };
  }

  /** Moves time on by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const live = this.timers.filter((t) => !t.cancelled && t.at <= until);
      if (live.length === 0) break;
      live.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = live[0]!;
      next.cancelled = true;
      this.now = next.at;
      next.fn();
    }
    this.now = until;
  }

  /** Timers armed and not yet fired or cancelled. */
  get armed(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

export interface Sent {
  readonly flow: Flow;
  readonly raw: Buffer;
  readonly message: SipMessage | null;
}

export class FakeTransport implements Transport {
  private sink: TransportSink | null = null;
  readonly sent: Sent[] = [];
  closed = false;

  async start(sink: TransportSink): Promise<BoundListener[]> {
    this.sink = sink;
    return this.listeners();
  }

  listeners(): BoundListener[] {
    return [{ transport: 'udp', address: '192.0.2.10', port: 5060 }, { transport: 'tcp', address: '192.0.2.10', port: 5060 }];
  }

  /** A flow from a peer at 192.0.2.20:`remotePort`. */
  flow(transport: Flow['transport'] = 'UDP', remotePort = 5070): Flow {
    return this.makeFlow(transport, { address: '192.0.2.20', port: remotePort }, { address: '192.0.2.10', port: 5060 });
  }

  flowTo(transport: Flow['transport'], remote: Flow['remote'], local?: Flow['local']): Flow {
    return this.makeFlow(transport, remote, local ?? { address: '192.0.2.10', port: 5060 });
  }

  private makeFlow(transport: Flow['transport'], remote: Flow['remote'], local: Flow['local']): Flow {
    const flow: Flow = {
      transport, local, remote,
      send: (raw) => {
        let message: SipMessage | null = null;
        try {
          message = parseSipMessage(raw);
        } catch {
          /* kept raw */
        }
        this.sent.push({ flow, raw, message });
      },
    };
    return flow;
  }

  /** Delivers a message from the peer as the socket transport would. */
  deliver(text: string | Buffer, flow: Flow): void {
    this.sink!.message(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, flow);
  }

  /** Reports a stream that could not be framed, as the socket transport would. */
  failStream(reason: string, flow: Flow): void {
    this.sink!.framingError(reason, flow);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  responses(cseq?: string): SipResponse[] {
    return this.sent
      .map((s) => s.message)
      .filter((m): m is SipResponse => m !== null && m.kind === 'response' && (cseq === undefined || firstHeader(m.headers, 'cseq') === cseq));
  }

  requests(method: string): SipRequest[] {
    return this.sent.map((s) => s.message).filter((m): m is SipRequest => m !== null && m.kind === 'request' && m.method === method);
  }
}

/** Lets the handler's promises settle (no time passes on any clock). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
