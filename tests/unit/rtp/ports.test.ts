import { describe, it, expect, afterEach } from 'vitest';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createLogger } from '../../../src/log.js';
import { PortAllocator, type PortPair } from '../../../src/rtp/ports.js';
import { TallenneError } from '../../../src/errors.js';

/** A random even base high in the range, so parallel test files rarely meet. */
const randomBase = (): number => 40000 + 2 * Math.floor(Math.random() * 9000);

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function bindBlocker(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

describe('PortAllocator', () => {
  it('binds an even RTP port and the next one for RTCP', async () => {
    const min = randomBase() + 1; // odd min: the first pair starts at the next even port
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 8 });
    expect(alloc.total).toBe(4);
    const pair = await alloc.allocatePair();
    cleanups.push(() => alloc.release(pair));
    expect(pair.port % 2).toBe(0);
    expect(pair.port).toBeGreaterThanOrEqual(min);
    expect(pair.rtp.address()).toMatchObject({ address: '127.0.0.1', port: pair.port });
    expect(pair.rtcp.address()).toMatchObject({ address: '127.0.0.1', port: pair.port + 1 });
    expect(alloc.inUse).toBe(1);
  });

  it('asks the kernel for rtp.receive_buffer on each RTP socket, and says once when net.core.rmem_max caps it', async () => {
    // Linux grants up to rmem_max and reports twice what it grants.
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
    const lines: Array<{ level: string; msg: string; asked?: number; granted?: number }> = [];
    const log = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    const min = randomBase();
    const asked = 256 * 1024;
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 7, receiveBuffer: asked, log });
    const pair = await alloc.allocatePair();
    cleanups.push(() => alloc.release(pair));
    expect(pair.rtp.getRecvBufferSize() / 2).toBe(Math.min(asked, rmemMax));

    const capped = new PortAllocator({ address: '127.0.0.1', min: min + 4, max: min + 7, receiveBuffer: rmemMax + 4096, log });
    for (let i = 0; i < 2; i++) {
      const p = await capped.allocatePair();
      cleanups.push(() => capped.release(p));
      expect(p.rtp.getRecvBufferSize() / 2).toBe(rmemMax);
    }
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ asked: rmemMax + 4096, granted: rmemMax });
    expect(warnings[0]!.msg).toContain('net.core.rmem_max');
  });

  it('hands out every pair once, then throws TALLENNE_NO_PORTS', async () => {
    const min = randomBase();
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 5 });
    const pairs: PortPair[] = [];
    cleanups.push(() => pairs.forEach((p) => alloc.release(p)));
    for (let i = 0; i < 3; i++) pairs.push(await alloc.allocatePair());
    expect(new Set(pairs.map((p) => p.port)).size).toBe(3);
    const err = await alloc.allocatePair().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TallenneError);
    expect((err as TallenneError).code).toBe('TALLENNE_NO_PORTS');
    expect(alloc.inUse).toBe(3);
  });

  it('skips a port another socket holds', async () => {
    const min = randomBase();
    const blocker = await bindBlocker(min + 1); // the RTCP half of the first pair
    cleanups.push(() => blocker.close());
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 3 });
    const pair = await alloc.allocatePair();
    cleanups.push(() => alloc.release(pair));
    expect(pair.port).toBe(min + 2);
    // The RTP half that was bound before the RTCP half failed has been let go.
    const probe = await bindBlocker(min);
    probe.close();
    await expect(alloc.allocatePair()).rejects.toMatchObject({ code: 'TALLENNE_NO_PORTS' });
  });

  it('releases pairs and reuses them round-robin, not at once', async () => {
    const min = randomBase();
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 5 });
    const a = await alloc.allocatePair();
    alloc.release(a);
    alloc.release(a); // idempotent
    expect(alloc.inUse).toBe(0);
    // The released pair's sockets are really closed: both ports can be bound again.
    for (const port of [a.port, a.port + 1]) (await bindBlocker(port)).close();
    const b = await alloc.allocatePair();
    const c = await alloc.allocatePair();
    const d = await alloc.allocatePair();
    cleanups.push(() => [b, c, d].forEach((p) => alloc.release(p)));
    expect(b.port).not.toBe(a.port);
    expect([b.port, c.port, d.port].sort()).toEqual([min, min + 2, min + 4]);
    expect(d.port).toBe(a.port);
  });

  it('does not give the same pair to concurrent allocations', async () => {
    const min = randomBase();
    const alloc = new PortAllocator({ address: '127.0.0.1', min, max: min + 7 });
    const pairs = await Promise.all([alloc.allocatePair(), alloc.allocatePair(), alloc.allocatePair(), alloc.allocatePair()]);
    cleanups.push(() => pairs.forEach((p) => alloc.release(p)));
    expect(new Set(pairs.map((p) => p.port)).size).toBe(4);
  });

  it('rethrows bind errors that are not about a busy port', async () => {
    const alloc = new PortAllocator({ address: '192.0.2.1', min: 40000, max: 40003 });
    await expect(alloc.allocatePair()).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
    expect(alloc.inUse).toBe(0);
  });

  it('binds udp6 sockets for an IPv6 address', async () => {
    const min = randomBase();
    const alloc = new PortAllocator({ address: '::1', min, max: min + 1 });
    const pair = await alloc.allocatePair().catch((e: NodeJS.ErrnoException) => e);
    if (pair instanceof Error) {
      // A machine without IPv6 loopback cannot run this case; anything else is a failure.
      expect(pair.code).toBe('EADDRNOTAVAIL');
      return;
    }
    cleanups.push(() => alloc.release(pair));
    expect(pair.rtp.address().family).toBe('IPv6');
  });

  it('refuses a range without a single pair', () => {
    expect(() => new PortAllocator({ address: '127.0.0.1', min: 40001, max: 40002 })).toThrow(RangeError);
  });
});
