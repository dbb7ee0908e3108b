/**
 * Sealed spools (src/spool/cipher.ts): records round-trip under the call's data key; the
 * file holds no clear payload and no clear key; a torn tail keeps every whole record; a
 * tampered, moved or swapped record is refused and counted while the others are read; a
 * wrong or missing key is one clean error; plain spools of an older daemon still read; the
 * key reaches the reader only through the key ring, bound to the recording's id.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { isUnansweredSpool, readSpool, readSpoolHeader, spoolKeyOf, type SpoolReadResult } from '../../../src/spool/reader.js';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC, SPOOL_MAGIC_SEALED } from '../../../src/spool/format.js';
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

/** A spool of META, `n` RTP packets on legs 0/1, one RTCP and END; returns the key bytes used. */
async function writeSpool(path: string, n: number, key?: SpoolKey): Promise<{ key: Buffer | undefined; sent: Buffer[] }> {
  const keyCopy = key ? Buffer.from(key.key) : undefined;
  const w = new SpoolWriter(path, key);
  const sent = packets(n);
  w.appendEvent(T0, { kind: 'pause' });
  sent.forEach((p, i) => w.appendPacket(RecordType.Rtp, i % 2, T0 + i * 20, p));
  w.appendPacket(RecordType.Rtcp, 1, T0 + n * 20, Buffer.from([0x80, 200, 0, 6, 1, 2, 3, 4]));
  await w.close({ endedAt: T0 + n * 20 + 1, reason: 'bye' });
  return { key: keyCopy, sent };
}

async function readAll(path: string, key?: Uint8Array): Promise<{ recs: Rec[]; result: SpoolReadResult }> {
  const recs: Rec[] = [];
  const result = await readSpool(path, (r) => void recs.push({ type: r.type, leg: r.leg, time: r.time, payload: Buffer.from(r.payload) }), { key });
  return { recs, result };
}

/** Byte offsets of each record in a sealed spool (after its header). */
function recordOffsets(file: Buffer): number[] {
  let at = SPOOL_MAGIC_SEALED.length;
  at += 4 + file.readUInt32LE(at) + SPOOL_TAG_BYTES;
  const offsets: number[] = [];
  while (at < file.length) {
    offsets.push(at);
    at += RECORD_HEADER_BYTES + file.readUInt32LE(at + 4);
  }
  return offsets;
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

  it('reads every whole record of a torn tail, wherever the cut falls in the last record', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'B.spool');
    const { key } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'B'));
    const whole = readFileSync(path);
    const offsets = recordOffsets(whole);
    const last = offsets.at(-1)!;
    for (let cut = last + 1; cut < whole.length; cut += 3) {
      const torn = join(dir, `torn-${cut}.spool`);
      writeFileSync(torn, whole.subarray(0, cut));
      const { recs, result } = await readAll(torn, key);
      expect(result).toEqual({ torn: true, records: offsets.length - 1, rejected: 0 });
      expect(recs.every((r) => r.type !== RecordType.End)).toBe(true);
    }
    // Cut inside the header: no record, a torn spool (as an empty plain one).
    const headerCut = join(dir, 'header-cut.spool');
    writeFileSync(headerCut, whole.subarray(0, 20));
    expect((await readAll(headerCut, key)).result).toEqual({ torn: true, records: 0, rejected: 0 });
  });

  it('refuses and counts a tampered record and reads the others', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'C.spool');
    const { key, sent } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'C'));
    const whole = readFileSync(path);
    const offsets = recordOffsets(whole);

    // One bit of the 4th RTP packet's ciphertext.
    const flipped = Buffer.from(whole);
    flipped[offsets[4]! + RECORD_HEADER_BYTES + 20]! ^= 0x01;
    writeFileSync(path, flipped);
    let read = await readAll(path, key);
    expect(read.result).toEqual({ torn: false, records: offsets.length - 1, rejected: 1 });
    expect(read.recs.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(sent.filter((_, i) => i !== 3));

    // The arrival time in the clear header is authenticated too.
    const retimed = Buffer.from(whole);
    retimed.writeDoubleLE(T0 + 999_999, offsets[2]! + 8);
    writeFileSync(path, retimed);
    read = await readAll(path, key);
    expect(read.result.rejected).toBe(1);
    expect(read.recs.some((r) => r.time === T0 + 999_999)).toBe(false);
  });

  it('refuses records swapped in place, copied over another, or moved to another leg', async () => {
    const dir = tempDir('spool-sealed');
    const path = join(dir, 'D.spool');
    const { key } = await writeSpool(path, 10, newSpoolKey(keyring(dir), 'D'));
    const whole = readFileSync(path);
    const o = recordOffsets(whole);
    const rec = (i: number): Buffer => whole.subarray(o[i]!, o[i + 1]!);

    // RTP records 2 and 3 are the same size: swap them.
    writeFileSync(path, Buffer.concat([whole.subarray(0, o[3]!), rec(4), rec(3), whole.subarray(o[5]!)]));
    expect((await readAll(path, key)).result).toEqual({ torn: false, records: o.length - 2, rejected: 2 });

    // Record 3 written over record 5 (a replay inside the file).
    writeFileSync(path, Buffer.concat([whole.subarray(0, o[5]!), rec(3), whole.subarray(o[6]!)]));
    expect((await readAll(path, key)).result.rejected).toBe(1);

    // The leg byte changed: the packet would land on the other channel.
    const moved = Buffer.from(whole);
    moved[o[3]! + 1] ^= 1;
    writeFileSync(path, moved);
    expect((await readAll(path, key)).result.rejected).toBe(1);
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
    const metaEnd = seal ? recordOffsets(file)[1]! : SPOOL_MAGIC.length + RECORD_HEADER_BYTES + file.readUInt32LE(SPOOL_MAGIC.length + 4);
    const cut = join(dir, 'cut.spool');
    for (let at = 0; at <= file.length; at++) {
      writeFileSync(cut, file.subarray(0, at));
      expect(isUnansweredSpool(cut), `cut at ${at} of ${file.length}`).toBe(at < metaEnd);
    }
  });
});
