/**
 * SpoolFollower: reading a spool while it grows, a torn tail waiting for the rest of its
 * record, END, damage, and readSpool (the same follower read once) on whole files; with the
 * thread pool's reads (the main thread) and with blocking ones (an encoder thread).
 */
import { describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { RecordType, RECORD_HEADER_BYTES, SPOOL_MAGIC } from '../../../src/spool/format.js';
import { SpoolFollower, type SpoolRecord } from '../../../src/spool/follower.js';
import { readSpool } from '../../../src/spool/reader.js';
import { tempDir } from '../../support/cleanup.js';

interface Seen {
  type: RecordType;
  leg: number;
  time: number;
  payload: Buffer;
}

function collector(): { seen: Seen[]; on: (r: SpoolRecord) => void } {
  const seen: Seen[] = [];
  return { seen, on: (r) => void seen.push({ type: r.type, leg: r.leg, time: r.time, payload: Buffer.from(r.payload) }) };
}

const packet = (n: number, size = 172): Buffer => Buffer.alloc(size, n & 0xff);

describe.each([
  ['asynchronous', false],
  ['blocking', true],
])('SpoolFollower (%s reads)', (_mode, blockingReads) => {
  it('reads only what is new at each read, and the END record ends it', async () => {
    const dir = tempDir('follower');
    const path = join(dir, 'a.spool');
    const w = new SpoolWriter(path);
    const f = new SpoolFollower(path, { bufferBytes: 512, blockingReads });
    const c = collector();
    expect(await f.read(c.on)).toBe(0);
    for (let i = 0; i < 10; i++) w.appendPacket(RecordType.Rtp, i % 2, 1000 + i, packet(i));
    await w.drain();
    expect(await f.read(c.on)).toBe(10);
    expect(await f.read(c.on)).toBe(0);
    for (let i = 10; i < 40; i++) w.appendPacket(RecordType.Rtp, 0, 1000 + i, packet(i));
    w.appendEvent(2000, { kind: 'pause' });
    await w.close({ endedAt: 3000, reason: 'bye' });
    expect(await f.read(c.on)).toBe(32);
    expect(f.ended).toBe(true);
    expect(f.partialBytes).toBe(0);
    expect(c.seen.map((s) => s.time).slice(0, 40)).toEqual(Array.from({ length: 40 }, (_, i) => 1000 + i));
    expect(c.seen[13]!.payload.equals(packet(13))).toBe(true);
    expect(c.seen.at(-1)!.type).toBe(RecordType.End);
    await f.close();
    // The same records as the whole-file reader.
    const whole = collector();
    const r = await readSpool(path, whole.on);
    expect(r).toEqual({ torn: false, records: 42, rejected: 0 });
    expect(whole.seen).toEqual(c.seen);
  });

  it('holds a record being written until it is whole, byte by byte', async () => {
    const dir = tempDir('follower');
    const path = join(dir, 'b.spool');
    const w = new SpoolWriter(path);
    for (let i = 0; i < 3; i++) w.appendPacket(RecordType.Rtp, 1, 10 + i, packet(i, 300));
    await w.close(null);
    const bytes = readFileSync(path);
    const grown = join(dir, 'grown.spool');
    writeFileSync(grown, bytes.subarray(0, 3));
    const f = new SpoolFollower(grown, { bufferBytes: 64, blockingReads });
    const c = collector();
    let got = 0;
    for (let at = 3; at <= bytes.length; at++) {
      got += await f.read(c.on);
      if (at < bytes.length) appendFileSync(grown, bytes.subarray(at, at + 1));
    }
    got += await f.read(c.on);
    expect(got).toBe(3);
    expect(c.seen.map((s) => s.payload.length)).toEqual([300, 300, 300]);
    expect(c.seen[2]!.payload.equals(packet(2, 300))).toBe(true);
    expect(f.partialBytes).toBe(0);
    await f.close();
  });

  it('leaves a torn tail unread (a crash) and stops at a damaged header', async () => {
    const dir = tempDir('follower');
    const path = join(dir, 'c.spool');
    const w = new SpoolWriter(path);
    for (let i = 0; i < 5; i++) w.appendPacket(RecordType.Rtp, 0, i, packet(i));
    await w.close(null);
    const whole = readFileSync(path);
    appendFileSync(path, whole.subarray(SPOOL_MAGIC.length, SPOOL_MAGIC.length + RECORD_HEADER_BYTES + 7));
    const f = new SpoolFollower(path, { blockingReads });
    expect(await f.read(() => undefined)).toBe(5);
    expect(f.partialBytes).toBe(RECORD_HEADER_BYTES + 7);
    expect(f.damaged).toBe(false);
    await f.close();
    expect(await readSpool(path, () => undefined)).toEqual({ torn: true, records: 5, rejected: 0 });

    const bad = join(dir, 'bad.spool');
    const damagedHeader = Buffer.alloc(RECORD_HEADER_BYTES);
    damagedHeader.writeUInt8(99, 0);
    writeFileSync(bad, Buffer.concat([whole, damagedHeader, whole.subarray(SPOOL_MAGIC.length)]));
    const g = new SpoolFollower(bad, { blockingReads });
    expect(await g.read(() => undefined)).toBe(5);
    expect(g.damaged).toBe(true);
    expect(await g.read(() => undefined)).toBe(0);
    await g.close();
  });

  it('grows its buffer for a record larger than it, and refuses a file that is not a spool', async () => {
    const dir = tempDir('follower');
    const path = join(dir, 'd.spool');
    const w = new SpoolWriter(path);
    w.appendPacket(RecordType.Rtcp, 0, 1, packet(7, 5000));
    w.appendPacket(RecordType.Rtp, 0, 2, packet(8, 100));
    await w.close(null);
    const f = new SpoolFollower(path, { bufferBytes: 256, blockingReads });
    const c = collector();
    expect(await f.read(c.on)).toBe(2);
    expect(c.seen[0]!.payload.equals(packet(7, 5000))).toBe(true);
    await f.close();

    const junk = join(dir, 'junk.spool');
    writeFileSync(junk, 'GET / HTTP/1.1\r\n\r\n');
    const j = new SpoolFollower(junk, { blockingReads });
    await expect(j.read(() => undefined)).rejects.toMatchObject({ code: 'TALLENNE_SPOOL_CORRUPT' });
    await j.close();
    const short = join(dir, 'short.spool');
    writeFileSync(short, SPOOL_MAGIC.subarray(0, 4));
    const s = new SpoolFollower(short, { blockingReads });
    expect(await s.read(() => undefined)).toBe(0);
    expect(s.isSpool).toBe(false);
    await s.close();
  });
});
