/**
 * Sealed spools (src/spool/cipher.ts): records round-trip under the call's data key, sealed
 * one block per flush; the file holds no clear payload and no clear key; a torn tail keeps
 * every whole block; a tampered, moved or swapped block is refused and counted while the
 * others are read; a wrong or missing key is one clean error; plain spools and spools sealed
 * per record (versions 1 and 2, an older daemon's) still read; the key reaches the reader
 * only through the key ring, bound to the recording's id.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCipheriv, randomBytes } from 'node:crypto';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { isUnansweredSpool, readSpool, readSpoolHeader, spoolKeyOf, type SpoolReadResult } from '../../../src/spool/reader.js';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED, SPOOL_MAGIC_SEALED_V2, writeRecordHeader } from '../../../src/spool/format.js';
import { SPOOL_TAG_BYTES, newSpoolKey, type SpoolKey } from '../../../src/spool/cipher.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { TallenneError } from '../../../src/errors.js';
import { tempDir } from '../../support/cleanup.js';

interface Rec { type: RecordType; leg: number; time: number; payload: Buffer }

const T0 = 1_700_000_000_000;

/** Packets with a recognisable body: a 12-byte RTP-like header and 160 bytes of a pattern. */
function packets(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from([0x80, 0, i >> 8, i & 0xff, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe]), Buffer.alloc(160, 0x41 + (i % 20))]));
}

function keyring(dir: string): Keyring {
  return Keyring.open({ master_key_file: join(dir, 'master.key') });
}

/** Packets per block: the writer is flushed after every 4th, as the call manager's timer does. */
const PER_BLOCK = 4;

/**
 * A spool of a pause event, `n` RTP packets on legs 0/1, one RTCP and END; returns the key
 * bytes used. Sealed, its blocks are: [event] [4 packets]… [the rest, RTCP, END].
 */
async function writeSpool(path: string, n: number, key?: SpoolKey): Promise<{ key: Buffer | undefined; sent: Buffer[] }> {
  const keyCopy = key ? Buffer.from(key.key) : undefined;
  const w = new SpoolWriter(path, key);
  const sent = packets(n);
  w.appendEvent(T0, { kind: 'pause' });
  sent.forEach((p, i) => {
    w.appendPacket(RecordType.Rtp, i % 2, T0 + i * 20, p);
    if (i % PER_BLOCK === PER_BLOCK - 1) w.flush();
  });
  w.appendPacket(RecordType.Rtcp, 1, T0 + n * 20, Buffer.from([0x80, 200, 0, 6, 1, 2, 3, 4]));
  await w.close({ endedAt: T0 + n * 20 + 1, reason: 'bye' });
  return { key: keyCopy, sent };
}

async function readAll(path: string, key?: Uint8Array): Promise<{ recs: Rec[]; result: SpoolReadResult }> {
  const recs: Rec[] = [];
  const result = await readSpool(path, (r) => void recs.push({ type: r.type, leg: r.leg, time: r.time, payload: Buffer.from(r.payload) }), { key });
  return { recs, result };
}

/** Byte offsets of each block in a sealed spool (after its header); of each record in a version 2 one. */
function blockOffsets(file: Buffer): number[] {
  let at = SPOOL_MAGIC_SEALED.length;
  at += 4 + file.readUInt32LE(at) + SPOOL_TAG_BYTES;
  const offsets: number[] = [];
  while (at < file.length) {
    offsets.push(at);
    at += RECORD_HEADER_BYTES + file.readUInt32LE(at + 4);
  }
  return offsets;
}

/**
 * A version 2 spool as an older daemon wrote it: each record sealed on its own, its nonce
 * (domain 0) numbered by record, its header the associated data. `sent` on leg 0, then END.
 */
function versionTwoSpool(spoolKey: SpoolKey, sent: Buffer[]): Buffer {
  const parts: Buffer[] = [SPOOL_MAGIC_SEALED_V2, spoolKey.header];
  const records: Array<[RecordType, Buffer]> = [...sent.map((p) => [RecordType.Rtp, p] as [RecordType, Buffer]), [RecordType.End, Buffer.from(JSON.stringify({ endedAt: T0 + 999, reason: 'bye' }))]];
  records.forEach(([type, body], i) => {
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    writeRecordHeader(header, 0, type, 0, body.length + SPOOL_TAG_BYTES, T0 + i * 20);
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(i, 8);
    const c = createCipheriv('aes-256-gcm', spoolKey.key, nonce, { authTagLength: SPOOL_TAG_BYTES });
    c.setAAD(header);
    parts.push(header, c.update(body), c.final(), c.getAuthTag());
  });
  return Buffer.concat(parts);
}

describe('sealed spool', () => {
  it('round-trips every record under the data key, and the file holds no clear payload or key', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'A.spool');
    const ring = keyring(dir);
    const { key, sent } = await writeSpool(path, 50, newSpoolKey(ring, 'A'));
    const { recs, result } = await readAll(path, key);
    expect(result).toEqual({ torn: false, records: 53, rejected: 0 });
    expect(recs[0]).toMatchObject({ type: RecordType.Event, leg: 0, time: T0 });
    expect(JSON.parse(recs[0]!.payload.toString())).toEqual({ kind: 'pause' });
    const rtp = recs.filter((r) => r.type === RecordType.Rtp);
    expect(rtp.map((r) => r.payload)).toEqual(sent);
    expect(rtp.map((r) => r.leg)).toEqual(sent.map((_, i) => i % 2));
    expect(JSON.parse(recs.at(-1)!.payload.toString())).toEqual({ endedAt: T0 + 50 * 20 + 1, reason: 'bye' });

    const file = readFileSync(path);
    expect(file.subarray(0, 8)).toEqual(SPOOL_MAGIC_SEALED);
    expect(file.includes(Buffer.alloc(16, 0x41))).toBe(false);
    expect(file.includes(Buffer.from([0xca, 0xfe, 0xba, 0xbe]))).toBe(false);
    expect(file.includes(Buffer.from('bye'))).toBe(false);
    expect(file.includes(key!)).toBe(false);
    expect(file.includes(Buffer.from(key!.toString('base64')))).toBe(false);
  });

  it.each([
    ['plain', false],
    ['sealed', true],
  ])('keeps every record in order when a flush interval outgrows a chunk, or one record does (%s)', async (_kind, sealed) => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'C.spool');
    const key = sealed ? newSpoolKey(keyring(dir), 'C') : undefined;
    const keyCopy = key ? Buffer.from(key.key) : undefined;
    const w = new SpoolWriter(path, key);
    // 300 packets with no flush between them (several chunks' worth), then one record larger
    // than a chunk between two packets, then more packets in flushes.
    const sent = packets(300);
    sent.forEach((p, i) => w.appendPacket(RecordType.Rtp, i % 2, T0 + i, p));
    const big = Buffer.alloc(20_000, 0x5a);
    w.appendPacket(RecordType.Rtcp, 0, T0 + 300, big);
    const after = packets(10);
    after.forEach((p, i) => {
      w.appendPacket(RecordType.Rtp, 1, T0 + 301 + i, p);
      w.flush();
    });
    await w.close({ endedAt: T0 + 400, reason: 'bye' });
    const { recs, result } = await readAll(path, keyCopy);
    expect(result).toEqual({ torn: false, records: 312, rejected: 0 });
    expect(recs.slice(0, 300).map((r) => r.payload)).toEqual(sent);
    expect(recs[300]).toMatchObject({ type: RecordType.Rtcp, time: T0 + 300 });
    expect(recs[300]!.payload.equals(big)).toBe(true);
    expect(recs.slice(301, 311).map((r) => r.payload)).toEqual(after);
    expect(recs.map((r) => r.time)).toEqual([...recs.map((r) => r.time)].sort((a, b) => a - b));
  });

  it('reads every record of the whole blocks of a torn tail, wherever the cut falls in the last block', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'B.spool');
    const { key } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'B'));
    const whole = readFileSync(path);
    const offsets = blockOffsets(whole);
    expect(offsets).toHaveLength(4);
    const last = offsets.at(-1)!;
    for (let cut = last + 1; cut < whole.length; cut += 3) {
      const torn = join(dir, `torn-${cut}.spool`);
      writeFileSync(torn, whole.subarray(0, cut));
      const { recs, result } = await readAll(torn, key);
      // The event and packets 0–7; packets 8 and 9, the RTCP and the END were in the torn block.
      expect(result).toEqual({ torn: true, records: 9, rejected: 0 });
      expect(recs.every((r) => r.type !== RecordType.End)).toBe(true);
    }
    // Cut inside the header: no record, a torn spool (as an empty plain one).
    const headerCut = join(dir, 'header-cut.spool');
    writeFileSync(headerCut, whole.subarray(0, 20));
    expect((await readAll(headerCut, key)).result).toEqual({ torn: true, records: 0, rejected: 0 });
  });

  it('refuses and counts a tampered block and reads the others', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'C.spool');
    const { key, sent } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'C'));
    const whole = readFileSync(path);
    const offsets = blockOffsets(whole);

    // One bit of the ciphertext of the block of packets 4–7.
    const flipped = Buffer.from(whole);
    flipped[offsets[2]! + RECORD_HEADER_BYTES + 20]! ^= 0x01;
    writeFileSync(path, flipped);
    let read = await readAll(path, key);
    expect(read.result).toEqual({ torn: false, records: 13 - 4, rejected: 1 });
    expect(read.recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent.filter((_, i) => i < 4 || i > 7));

    // The block's clear header (here its time) is authenticated too.
    const retimed = Buffer.from(whole);
    retimed.writeDoubleLE(T0 + 999_999, offsets[1]! + 8);
    writeFileSync(path, retimed);
    read = await readAll(path, key);
    expect(read.result).toEqual({ torn: false, records: 13 - 4, rejected: 1 });
    expect(read.recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent.slice(4));
  });

  it('refuses blocks swapped in place, copied over another, or with their leg byte changed', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'D.spool');
    const { key } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'D'));
    const whole = readFileSync(path);
    const o = blockOffsets(whole);
    const block = (i: number): Buffer => whole.subarray(o[i]!, o[i + 1]!);

    // Blocks 1 and 2 (four packets each) are the same size: swap them.
    writeFileSync(path, Buffer.concat([whole.subarray(0, o[1]!), block(2), block(1), whole.subarray(o[3]!)]));
    expect((await readAll(path, key)).result).toEqual({ torn: false, records: 13 - 8, rejected: 2 });

    // Block 1 written over block 2 (a replay inside the file).
    writeFileSync(path, Buffer.concat([whole.subarray(0, o[2]!), block(1), whole.subarray(o[3]!)]));
    expect((await readAll(path, key)).result.rejected).toBe(1);

    // The leg byte of the block's header changed.
    const moved = Buffer.from(whole);
    moved[o[1]! + 1] ^= 1;
    writeFileSync(path, moved);
    expect((await readAll(path, key)).result.rejected).toBe(1);
  });

  it('still reads a spool sealed per record (version 2, an older daemon\'s), and refuses a tampered record alone', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'V2.spool');
    const spoolKey = newSpoolKey(keyring(dir), 'V2');
    const key = Buffer.from(spoolKey.key);
    const sent = packets(6);
    writeFileSync(path, versionTwoSpool(spoolKey, sent));
    expect(await readSpoolHeader(path)).toMatchObject({ sealed: true });
    let read = await readAll(path, key);
    expect(read.result).toEqual({ torn: false, records: 7, rejected: 0 });
    expect(read.recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent);
    expect(read.recs.at(-1)!.type).toBe(RecordType.End);

    const file = readFileSync(path);
    const o = blockOffsets(file);
    file[o[2]! + RECORD_HEADER_BYTES + 3]! ^= 0x10;
    writeFileSync(path, file);
    read = await readAll(path, key);
    expect(read.result).toEqual({ torn: false, records: 6, rejected: 1 });
    expect(read.recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent.filter((_, i) => i !== 2));
  });

  it('is one TALLENNE_SPOOL_KEY error with a wrong key or none, and no record is handed on', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'E.spool');
    await writeSpool(path, 5, newSpoolKey(keyring(dir), 'E'));
    let seen = 0;
    for (const key of [randomBytes(32), undefined, randomBytes(16)]) {
      const err = await readSpool(path, () => void seen++, { key }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TallenneError);
      expect((err as TallenneError).code).toBe('TALLENNE_SPOOL_KEY');
    }
    expect(seen).toBe(0);
  });

  it('still reads a plain spool (version 1, an older daemon\'s), with or without a key', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'F.spool');
    const { sent } = await writeSpool(path, 6);
    expect(readFileSync(path).subarray(0, 8)).toEqual(SPOOL_MAGIC);
    expect(await readSpoolHeader(path)).toEqual({ sealed: false });
    expect(await spoolKeyOf(path, 'F', keyring(dir))).toBeUndefined();
    for (const key of [undefined, randomBytes(32)]) {
      const { recs, result } = await readAll(path, key);
      expect(result).toEqual({ torn: false, records: 9, rejected: 0 });
      expect(recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent);
    }
  });

  it('gives the key back only through the key ring, for the spool\'s own recording id', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'G.spool');
    const ring = keyring(dir);
    const { key } = await writeSpool(path, 3, newSpoolKey(ring, 'G'));
    const head = await readSpoolHeader(path);
    expect(head.sealed && head.header.wrapped.keyId).toBe(ring.currentKeyId);
    expect(await spoolKeyOf(path, 'G', ring)).toEqual(key);

    // The same file under another recording's name: the wrapping is bound to 'G'.
    const other = join(dir, 'H.spool');
    copyFileSync(path, other);
    await expect(spoolKeyOf(other, 'H', ring)).rejects.toMatchObject({ code: 'TALLENNE_DECRYPT_FAILED' });

    // Another master key file (a different recorder) cannot unwrap it.
    const foreign = Keyring.open({ master_key_file: join(tempDir('spool-sealed'), 'master.key') });
    await expect(spoolKeyOf(path, 'G', foreign)).rejects.toMatchObject({ code: 'TALLENNE_KEY_UNKNOWN' });

    // After a key rotation the old master key stays in the ring: a live call's spool still opens.
    ring.addKey();
    expect(await spoolKeyOf(path, 'G', ring)).toEqual(key);
  });

  it('refuses a spool whose sealed header is damaged', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'I.spool');
    await writeSpool(path, 3, newSpoolKey(keyring(dir), 'I'));
    const file = readFileSync(path);
    file.writeUInt32LE(1 << 30, 8);
    writeFileSync(path, file);
    await expect(readSpoolHeader(path)).rejects.toMatchObject({ code: 'TALLENNE_SPOOL_CORRUPT' });
    await expect(readSpool(path, () => undefined, { key: randomBytes(32) })).rejects.toMatchObject({ code: 'TALLENNE_SPOOL_CORRUPT' });
    truncateSync(path, 0);
    expect((await readAll(path)).result).toEqual({ torn: true, records: 0, rejected: 0 });
  });
});

describe('a spool cut before its first META is whole (a call never answered)', () => {
  const meta = { id: 'r1', callId: 'c', siprec: true, answeredAt: T0, direction: 'inbound', participants: [], legs: [] } as const;

  it.each([['plain', false], ['sealed', true]] as const)('%s: every cut inside the magic, the key header or the META is recognised, and nothing after it', async (_name, seal) => {
    const dir = tempDir('unanswered');
    const path = join(dir, 'whole.spool');
    const w = new SpoolWriter(path, seal ? newSpoolKey(keyring(dir), 'r1') : undefined);
    w.appendMeta(T0, meta as never);
    w.appendPacket(RecordType.Rtp, 0, T0 + 20, packets(1)[0]!);
    await w.close({ endedAt: T0 + 40, reason: 'bye' });
    const file = readFileSync(path);
    const metaEnd = seal ? blockOffsets(file)[1]! : SPOOL_MAGIC.length + RECORD_HEADER_BYTES + file.readUInt32LE(SPOOL_MAGIC.length + 4);
    const cut = join(dir, 'cut.spool');
    for (let at = 0; at <= file.length; at++) {
      writeFileSync(cut, file.subarray(0, at));
      expect(isUnansweredSpool(cut), `cut at ${at} of ${file.length}`).toBe(at < metaEnd);
    }
  });
});
