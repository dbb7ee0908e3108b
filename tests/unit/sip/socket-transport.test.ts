/**
 * The socket transport on loopback: whole messages up with their flow, answers on the same
 * path, keep-alives handled below the user agent, a stream that cannot be framed closed,
 * and the stream limits: connections per source, idle and unfinished-message timeouts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import { SocketTransport } from '../../../src/sip/socket-transport.js';
import type { ConnectionRefusal, Flow, TransportSink } from '../../../src/sip/transport.js';

const MESSAGE = 'OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKs\r\nContent-Length: 0\r\n\r\n';

class Sink implements TransportSink {
  readonly messages: Array<{ data: string; flow: Flow }> = [];
  readonly errors: string[] = [];
  readonly refused: ConnectionRefusal[] = [];
  private waiters: Array<() => void> = [];
  message(data: Buffer, flow: Flow): void {
    this.messages.push({ data: data.toString('latin1'), flow });
    this.wake();
  }
  framingError(reason: string): void {
    this.errors.push(reason);
    this.wake();
  }
  connectionRefused(reason: ConnectionRefusal): void {
    this.refused.push(reason);
    this.wake();
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once something more has arrived. */
  next(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
}

let transport: SocketTransport;
let sink: Sink;
let udpPort: number;
let tcpPort: number;

const LIMITS = { maxConnectionsPerSource: 2, idleMs: 60_000, messageMs: 300 };

async function startTransport(limits = LIMITS): Promise<void> {
  transport = new SocketTransport({
    listen: [{ transport: 'udp', address: '127.0.0.1', port: 0 }, { transport: 'tcp', address: '127.0.0.1', port: 0 }],
    maxMessageBytes: 4096,
    limits,
  });
  sink = new Sink();
  const l = await transport.start(sink);
  udpPort = l.find((x) => x.transport === 'udp')!.port;
  tcpPort = l.find((x) => x.transport === 'tcp')!.port;
}

beforeEach(() => startTransport());
afterEach(async () => {
  await transport.close();
});

async function connect(): Promise<Socket> {
  const s = createConnection({ host: '127.0.0.1', port: tcpPort });
  await once(s, 'connect');
  return s;
}

describe('SocketTransport', () => {
  it('delivers datagrams with their flow, answers on it, and drops CRLF keep-alives', async () => {
    const peer = createSocket('udp4');
    await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
    try {
      const arrived = sink.next();
      peer.send('\r\n\r\n', udpPort, '127.0.0.1');
      peer.send(MESSAGE, udpPort, '127.0.0.1');
      await arrived;
      expect(sink.messages.map((m) => m.data)).toEqual([MESSAGE]);
      const flow = sink.messages[0]!.flow;
      expect(flow).toMatchObject({ transport: 'UDP', local: { port: udpPort }, remote: { address: '127.0.0.1', port: peer.address().port } });
      const reply = once(peer, 'message');
      flow.send(Buffer.from('answer'));
      expect(String((await reply)[0])).toBe('answer');
    } finally {
      peer.close();
    }
  });

  it('frames a TCP stream, answers a CRLFCRLF ping with a CRLF pong, and reuses the connection for requests', async () => {
    const s = await connect();
    try {
      const pong = once(s, 'data');
      s.write('\r\n\r\n');
      expect(String((await pong)[0])).toBe('\r\n');
      const arrived = sink.next();
      s.write(MESSAGE.slice(0, 30));
      s.write(MESSAGE.slice(30) + MESSAGE);
      await arrived;
      while (sink.messages.length < 2) await sink.next();
      expect(sink.messages.map((m) => m.data)).toEqual([MESSAGE, MESSAGE]);
      const flow = transport.flowTo('TCP', sink.messages[0]!.flow.remote)!;
      const got = once(s, 'data');
      flow.send(Buffer.from('BYE'));
      expect(String((await got)[0])).toBe('BYE');
    } finally {
      s.destroy();
    }
  });

  it('closes a stream it cannot frame and reports why', async () => {
    const s = await connect();
    const closed = once(s, 'close');
    const reported = sink.next();
    s.write('OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKs\r\n\r\n');
    await reported;
    await closed;
    expect(sink.errors).toEqual(['no Content-Length on a stream transport']);
    expect(sink.messages).toEqual([]);
  });

  it('closes connections over the per-source cap at once, and counts them', async () => {
    const a = await connect();
    const b = await connect();
    const c = createConnection({ host: '127.0.0.1', port: tcpPort });
    try {
      await once(c, 'close');
      expect(sink.refused).toEqual(['connection_cap']);
      expect(a.destroyed || b.destroyed).toBe(false);
      // A slot freed is a slot taken again.
      const aClosed = once(a, 'close');
      a.destroy();
      await aClosed;
      const d = await connect();
      const arrived = sink.next();
      d.write(MESSAGE);
      await arrived;
      expect(sink.messages).toHaveLength(1);
      d.destroy();
    } finally {
      a.destroy();
      b.destroy();
      c.destroy();
    }
  });

  it('closes a connection that begins a message and stalls (slowloris), though bytes keep coming', async () => {
    const s = await connect();
    const closed = once(s, 'close');
    let i = 0;
    // One byte of the header at a time, each well inside the idle timeout; never finished.
    const dribble = setInterval(() => {
      if (!s.destroyed) s.write(MESSAGE[i++ % 40]!);
    }, 20);
    try {
      await closed;
    } finally {
      clearInterval(dribble);
    }
    expect(sink.refused).toEqual(['message_timeout']);
    expect(sink.messages).toEqual([]);
  });

  it('closes a connection that stays silent past the idle timeout', async () => {
    await transport.close();
    await startTransport({ ...LIMITS, idleMs: 200 });
    const s = await connect();
    await once(s, 'close');
    expect(sink.refused).toEqual(['idle']);
  });
});
