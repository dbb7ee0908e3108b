/**
 * The spool: one append-only file per call, the durable truth while the call lives.
 *
 *   plain  = MAGIC(8) record*                        (version 1: TLNSPL01)
 *   sealed = MAGIC_SEALED(8) header block*           (version 3: TLNSPL03, see cipher.ts)
 *   block  = a record of type Sealed: its payload is the AES-256-GCM ciphertext of record*
 *            and the tag (`length` counts both); its 16 header bytes are authenticated
 *   record = type:u8 leg:u8 reserved:u16 length:u32 time:f64 payload[length]
 *
 * Readers also take version 2 (TLNSPL02: each record sealed on its own, its payload its
 * ciphertext and tag), so spools left by an older daemon are still recovered.
 *
 * `time` is the arrival time in epoch milliseconds (fractional). `leg` of an RTP/RTCP record is
 * the LegDescriptor.index of the leg (its m-line index in the offer), not its position. A record cut short by a
 * crash is ignored on reading; everything before it is kept. The spool never holds a clear
 * number or a name: META is the masked RecordingMeta.
 */
import { join } from 'node:path';

/** The folder of the spools under `storage.dir`. */
export function spoolDirOf(storageDir: string): string {
  return join(storageDir, 'spool');
}

export const SPOOL_MAGIC = Buffer.from('TLNSPL01', 'latin1');
export const SPOOL_MAGIC_SEALED = Buffer.from('TLNSPL03', 'latin1');
/** Version 2, sealed per record: read only. */
export const SPOOL_MAGIC_SEALED_V2 = Buffer.from('TLNSPL02', 'latin1');
export const RECORD_HEADER_BYTES = 16;
/** Upper bound of one record's payload; longer claims mean a damaged file. */
export const MAX_RECORD_PAYLOAD = 1 << 20;
/** Upper bound of a sealed block's plain records (the writer's blocks are one chunk of records). */
export const MAX_BLOCK_PAYLOAD = 2 * MAX_RECORD_PAYLOAD;

export enum RecordType {
  /** A raw RTP packet of leg `leg`. */
  Rtp = 1,
  /** A raw RTCP packet (compound) of leg `leg`. */
  Rtcp = 2,
  /** JSON RecordingMeta snapshot; the latest one wins. */
  Meta = 3,
  /** JSON SpoolEvent. */
  Event = 4,
  /** JSON SpoolEnd: the call ended normally. */
  End = 5,
  /** A sealed block of records (version 3); never inside a block. */
  Sealed = 6,
}

/** A spool that ends without an END record (crash, failed write) is a truncated recording. */
export type SpoolEvent =
  | { readonly kind: 'pause' }
  | { readonly kind: 'resume' };

export interface SpoolEnd {
  readonly endedAt: number;
  readonly reason: string;
}

export function writeRecordHeader(buf: Buffer, offset: number, type: RecordType, leg: number, length: number, time: number): void {
  buf.writeUInt8(type, offset);
  buf.writeUInt8(leg, offset + 1);
  buf.writeUInt16LE(0, offset + 2);
  buf.writeUInt32LE(length, offset + 4);
  buf.writeDoubleLE(time, offset + 8);
}

export interface RecordHeader {
  readonly type: RecordType;
  readonly leg: number;
  readonly length: number;
  readonly time: number;
}

/**
 * The header of the record at `offset` (RECORD_HEADER_BYTES must be there), or null when it
 * names no record type or an impossible length: the file is damaged from there on.
 */
export function readRecordHeader(buf: Buffer, offset: number, sealOverhead = 0): RecordHeader | null {
  const h = headerAt(buf, offset);
  // A version 2 sealed record's payload carries its authentication tag (`sealOverhead` bytes) too.
  if (h.type < RecordType.Rtp || h.type > RecordType.End || h.length > MAX_RECORD_PAYLOAD + sealOverhead || h.length < sealOverhead) return null;
  return h;
}

/** The header of the sealed block at `offset`, or null when it is none (`tagBytes`: its tag's length). */
export function readBlockHeader(buf: Buffer, offset: number, tagBytes: number): RecordHeader | null {
  const h = headerAt(buf, offset);
  if (h.type !== RecordType.Sealed || h.length > MAX_BLOCK_PAYLOAD + tagBytes || h.length < tagBytes) return null;
  return h;
}

function headerAt(buf: Buffer, offset: number): RecordHeader {
  return { type: buf.readUInt8(offset) as RecordType, leg: buf.readUInt8(offset + 1), length: buf.readUInt32LE(offset + 4), time: buf.readDoubleLE(offset + 8) };
}
