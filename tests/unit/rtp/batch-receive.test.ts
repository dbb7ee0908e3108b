import { describe, it, expect, afterAll, afterEach } from 'vitest';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { BatchReceiver, ipv6Text, loadBatchAddon, openBatchReceive, SLOT_BYTES } from '../../../src/rtp/batch-receive.js';
import { PortAllocator } from '../../../src/rtp/ports.js';
import { TallenneError } from '../../../src/errors.js';
import { EventEmitter } from 'node:events';
import { RtpLegReceiver } from '../../../src/rtp/receiver.js';
import { newRtpCounters } from '../../../src/rtp/counters.js';
import type { PortPair } from '../../../src/rtp/ports.js';
import type { SpoolWriter } from '../../../src/spool/writer.js';
import { rtpPacket } from './fixtures.js';

const addon = loadBatchAddon();
if ('error' in addon) throw new Error(`the batched receive addon must be built for these tests (npm ci builds it): ${addon.error}`);
const batch = new BatchReceiver(addon.native);
afterAll(() => batch.close());

const sockets: dgram.Socket[] = [];
afterEach(() => {
  while (sockets.length) {
    try {
      sockets.pop()!.close();
    } catch {
      // closed by the test
    }
  }
});

async function bound(type: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  return s;
}

function send(from: dgram.Socket, buf: Buffer, to: dgram.Socket): Promise<void> {
  const a = to.address();
  return new Promise((resolve, reject) => from.send(buf, a.port, a.address, (err) => (err ? reject(err) : resolve())));
}

async function until(what: string, cond: () => boolean, limitMs = 5000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Got { socket: string; bytes: Buffer; address: string; port: number; truncated: boolean; at?: number; handledAt?: number }

const epochNow = (): number => performance.timeOrigin + performance.now();

describe('batched RTP receive (recvmmsg)', () => {
  it('hands over every datagram of several sockets with its bytes and source, many to a batch', async () => {
    const [a, b, peer] = [await bound(), await bound(), await bound()];
    const got: Got[] = [];
    const stops = [
      batch.read(a, (bytes, address, port, truncated, at) => got.push({ socket: 'a', bytes: Buffer.from(bytes), address, port, truncated, at, handledAt: epochNow() })),
      batch.read(b, (bytes, address, port, truncated, at) => got.push({ socket: 'b', bytes: Buffer.from(bytes), address, port, truncated, at, handledAt: epochNow() })),
    ];
    const batches0 = batch.batches;
    const t0 = epochNow();
    // Sent without waiting for the loop, so they queue on both sockets and come together.
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < 40; i++) sent.push(send(peer, Buffer.alloc(172, i), i % 2 ? b : a));
    await Promise.all(sent);
    await until('40 datagrams', () => got.length === 40);
    for (const s of stops) s();
    const peerPort = peer.address().port;
    expect(got.every((g) => g.address === '127.0.0.1' && g.port === peerPort && !g.truncated && g.bytes.length === 172)).toBe(true);
    // Each socket's datagrams in the order sent, each with its own bytes (the arena is reused).
    expect(got.filter((g) => g.socket === 'a').map((g) => g.bytes[0])).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i));
    expect(got.filter((g) => g.socket === 'b').map((g) => g.bytes[0])).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 1));
    expect(got.every((g) => g.bytes.every((x) => x === g.bytes[0]))).toBe(true);
    expect(batch.batches - batches0).toBeGreaterThan(0);
    expect(batch.batches - batches0).toBeLessThan(40);
    // Each packet is dated by the kernel's receive time: after the sends began, not after it
    // was handed over, and in the order it came on its socket.
    for (const g of got) {
      expect(g.at!).toBeGreaterThanOrEqual(t0 - 1);
      expect(g.at!).toBeLessThanOrEqual(g.handledAt! + 0.001);
    }
    for (const s of ['a', 'b']) {
      const times = got.filter((g) => g.socket === s).map((g) => g.at!);
      expect(times).toEqual([...times].sort((x, y) => x - y));
    }
  });

  it('drainNow hands over at once what waits, without waiting for the gap; not from inside a handler', async () => {
    const [a, peer, inside] = [await bound(), await bound(), await bound()];
    // A connected socket sends at once (no address lookup), so a datagram can be made to
    // wait on the socket while a handler runs.
    await new Promise<void>((r) => inside.connect(a.address().port, '127.0.0.1', r));
    const got: number[] = [];
    let nested = -1;
    const stop = batch.read(a, (bytes) => {
      got.push(bytes.length);
      if (bytes.length !== 10) return;
      inside.send(Buffer.alloc(11));
      const until = Date.now() + 5;
      while (Date.now() < until) { /* the datagram reaches the socket meanwhile */ }
      // The arena is in use by this batch: a drain asked for here must not run.
      batch.drainNow();
      nested = got.length;
    });
    await send(peer, Buffer.alloc(10), a);
    await until('the datagram sent inside the handler', () => got.length === 2);
    expect(nested).toBe(1);
    expect(got).toEqual([10, 11]);
    // A drain just ran, so the next wake-up is up to 40 ms away. The loop is not let run
    // here, so only drainNow can hand this datagram over.
    await send(peer, Buffer.alloc(12), a);
    const end = Date.now() + 1000;
    while (got.length < 3 && Date.now() < end) batch.drainNow();
    expect(got).toEqual([10, 11, 12]);
    stop();
  });

  it('drainNow(socket) hands over what waits on that socket only; the others wait for their wake-up', async () => {
    const [a, b, peer, toA, toB] = [await bound(), await bound(), await bound(), await bound(), await bound()];
    // Connected sockets send at once, so datagrams can be queued without letting the loop run.
    await new Promise<void>((r) => toA.connect(a.address().port, '127.0.0.1', r));
    await new Promise<void>((r) => toB.connect(b.address().port, '127.0.0.1', r));
    const got: string[] = [];
    const stops = [batch.read(a, (bytes) => got.push(`a${bytes.length}`)), batch.read(b, (bytes) => got.push(`b${bytes.length}`))];
    await send(peer, Buffer.alloc(9), a);
    await until('the first datagram', () => got.length === 1);
    // From here until the drains the loop does not run, so no wake-up can take these two.
    toA.send(Buffer.alloc(10));
    toB.send(Buffer.alloc(20));
    const until5 = Date.now() + 5;
    while (Date.now() < until5) { /* the datagrams reach their sockets meanwhile */ }
    batch.drainNow(b);
    expect(got).toEqual(['a9', 'b20']);
    // A socket not read here has nothing to give, and a second drain finds b empty.
    batch.drainNow(peer);
    batch.drainNow(b);
    expect(got).toEqual(['a9', 'b20']);
    await until('a\'s datagram at its wake-up', () => got.length === 3);
    expect(got).toEqual(['a9', 'b20', 'a10']);
    for (const s of stops) s();
    // A stopped socket is no longer drained here.
    toB.send(Buffer.alloc(11));
    const until5b = Date.now() + 5;
    while (Date.now() < until5b) { /* as above */ }
    batch.drainNow(b);
    expect(got).toEqual(['a9', 'b20', 'a10']);
  });

  it('a packet that waits for its batch keeps the time it came, not the time it was read', async () => {
    const [a, peer] = [await bound(), await bound()];
    const got: Got[] = [];
    const stop = batch.read(a, (bytes, address, port, truncated, at) => got.push({ socket: 'a', bytes: Buffer.from(bytes), address, port, truncated, at, handledAt: epochNow() }));
    await send(peer, Buffer.alloc(12), a);
    // Hold the event loop 30 ms after the send, so the packet waits in the socket.
    const sentAt = epochNow();
    while (epochNow() - sentAt < 30) { /* the loop is blocked on purpose */ }
    await until('1 datagram', () => got.length === 1);
    stop();
    expect(got[0]!.handledAt! - got[0]!.at!).toBeGreaterThanOrEqual(25);
  });

  it('flags a datagram longer than a slot as truncated, and the next one arrives whole', async () => {
    const [a, peer] = [await bound(), await bound()];
    const got: Got[] = [];
    const stop = batch.read(a, (bytes, address, port, truncated) => got.push({ socket: 'a', bytes: Buffer.from(bytes), address, port, truncated }));
    await send(peer, Buffer.alloc(SLOT_BYTES + 500, 7), a);
    await send(peer, Buffer.alloc(12, 8), a);
    await until('2 datagrams', () => got.length === 2);
    stop();
    expect(got.map((g) => [g.truncated, g.bytes.length])).toEqual([[true, SLOT_BYTES], [false, 12]]);
  });

  it('gives the reading back to Node at the stop: its \'message\' events come again', async () => {
    const [a, peer] = [await bound(), await bound()];
    let batched = 0;
    const stop = batch.read(a, () => batched++);
    await send(peer, Buffer.alloc(20), a);
    await until('one batched', () => batched === 1);
    stop();
    stop(); // idempotent
    const viaNode = new Promise<number>((r) => a.once('message', (m) => r(m.length)));
    await send(peer, Buffer.alloc(33), a);
    expect(await viaNode).toBe(33);
    expect(batched).toBe(1);
  });

  it('writes IPv6 sources as Node does, and IPv4-mapped ones in their dotted form', async () => {
    const [a, peer] = [await bound('udp6'), await bound('udp6')];
    const got: Got[] = [];
    const stop = batch.read(a, (bytes, address, port, truncated) => got.push({ socket: 'a', bytes: Buffer.from(bytes), address, port, truncated }));
    await send(peer, Buffer.alloc(16), a);
    await until('1 datagram', () => got.length === 1);
    stop();
    const viaNode = new Promise<dgram.RemoteInfo>((r) => a.once('message', (_m, rinfo) => r(rinfo)));
    await send(peer, Buffer.alloc(16), a);
    const rinfo = await viaNode;
    expect(got[0]).toMatchObject({ address: rinfo.address, port: rinfo.port });
    const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));
    expect(ipv6Text(bytes('00000000000000000000000000000001'), 0)).toBe('::1');
    expect(ipv6Text(bytes('20010db8000000000001000000000001'), 0)).toBe('2001:db8::1:0:0:1');
    expect(ipv6Text(bytes('fe800000000000000202b3fffe1e8329'), 0)).toBe('fe80::202:b3ff:fe1e:8329');
    expect(ipv6Text(bytes('20010db8000100020003000400050006'), 0)).toBe('2001:db8:1:2:3:4:5:6');
    expect(ipv6Text(bytes('20010db8000000010000000000000000'), 0)).toBe('2001:db8:0:1::');
    expect(ipv6Text(bytes('00000000000000000000ffffc0000280'), 0)).toBe('::ffff:192.0.2.128');
  });

  it('names each datagram\'s own source when a socket hears from two addresses in turn', async () => {
    const a = await bound();
    const other = dgram.createSocket('udp4');
    sockets.push(other);
    await new Promise<void>((r) => other.bind(0, '127.0.0.2', r));
    const peer = await bound();
    const got: Got[] = [];
    const stop = batch.read(a, (bytes, address, port, truncated) => got.push({ socket: 'a', bytes: Buffer.from(bytes), address, port, truncated }));
    const senders = [peer, other, peer, other];
    for (let i = 0; i < senders.length; i++) {
      await send(senders[i]!, Buffer.alloc(12), a);
      // One at a time, so the order they are handed over in is the order sent.
      await until(`datagram ${i + 1}`, () => got.length === i + 1);
    }
    stop();
    expect(got.map((g) => `${g.address}:${g.port}`)).toEqual(senders.map((s) => `${s.address().address}:${s.address().port}`));
  });

  it('a port pair released while still read stops the read first, so its descriptor is never read for another socket', async () => {
    const base = 40000 + 2 * Math.floor(Math.random() * 9000);
    const ports = new PortAllocator({ address: '127.0.0.1', min: base, max: base + 3, batch });
    expect(ports.batched).toBe(true);
    const pair = await ports.allocatePair();
    let first = 0;
    pair.readRtp!(() => first++);
    ports.release(pair); // no stop called by a receiver
    const again = await ports.allocatePair();
    let second = 0;
    const stop = again.readRtp!(() => second++);
    const peer = await bound();
    await send(peer, Buffer.alloc(12), again.rtp);
    await until('the new pair read', () => second === 1);
    stop();
    ports.release(again);
    expect(first).toBe(0);
  });

  it('rtp.receive: "node" reads with Node; "batched" on a socket that is not bound is refused clearly', async () => {
    expect(openBatchReceive('node')).toBeNull();
    const unbound = dgram.createSocket('udp4');
    sockets.push(unbound);
    expect(() => batch.read(unbound, () => undefined)).toThrow(TallenneError);
    const auto = openBatchReceive('auto');
    expect(auto).toBeInstanceOf(BatchReceiver);
    auto!.close();
    expect(() => auto!.read(unbound, () => undefined)).toThrow(/closed/);
  });

  it('a leg whose socket cannot be read in batches is read by Node instead, and the call goes on', () => {
    const rtp = new EventEmitter();
    const pair = { port: 40000, rtp, rtcp: new EventEmitter(), readRtp: () => { throw new TallenneError('TALLENNE_BATCH_RECEIVE', 'no descriptor'); } } as unknown as PortPair;
    const appended: number[] = [];
    const spool = { appendPacket: (_t: number, _l: number, _time: number, msg: Buffer) => appended.push(msg.length) } as unknown as SpoolWriter;
    const warnings: string[] = [];
    const log = { warn: (_o: unknown, msg: string) => warnings.push(msg), debug: () => undefined, info: () => undefined } as unknown as import('../../../src/log.js').Logger;
    const counters = newRtpCounters();
    const receiver = new RtpLegReceiver({ legIndex: 0, pair, spool, formats: [{ pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 }], counters, log, now: () => 1_700_000_000_000, rtcpIntervalMs: 60_000 });
    rtp.emit('message', rtpPacket({ seq: 1, ts: 0, ssrc: 7 }), { address: '127.0.0.1', family: 'IPv4', port: 50000, size: 172 });
    receiver.close();
    expect(counters.packets).toBe(1);
    expect(appended).toHaveLength(1);
    expect(warnings).toEqual([expect.stringMatching(/Node reads it/)]);
    expect(rtp.listenerCount('message')).toBe(0);
  });
});
