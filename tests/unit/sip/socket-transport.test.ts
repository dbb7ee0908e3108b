/**
 * The socket transport on loopback: whole messages up with their flow, answers on the same
 * path, keep-alives handled below the user agent, and a stream that cannot be framed closed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import { SocketTransport } from '../../../src/sip/socket-transport.js';
import type { Flow, TransportSink } from '../../../src/sip/transport.js';

const MESSAGE = 'OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKs\r\nContent-Length: 0\r\n\r\n';

class Sink implements TransportSink {
  readonly messages: Array<{ data: string; flow: Flow }> = [];
  readonly errors: string[] = [];
  private waiters: Array<() => void> = [];
  message(data: Buffer, flow: Flow): void {
    this.messages.push({ data: data.toString('latin1'), flow });
    this.wake();
  }
  framingError(reason: string): void {
    this.errors.push(reason);
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

beforeEach(async () => {
  transport = new SocketTransport([{ transport: 'udp', address: '127.0.0.1', port: 0 }, { transport: 'tcp', address: '127.0.0.1', port: 0 }], 4096);
  sink = new Sink();
  const l = await transport.start(sink);
  udpPort = l.find((x) => x.transport === 'udp')!.port;
  tcpPort = l.find((x) => x.transport === 'tcp')!.port;
});
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
});
