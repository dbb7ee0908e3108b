/**
 * Ogg Opus writer (RFC 3533 pages, RFC 7845 Opus mapping), writing pages straight to a file
 * descriptor as they fill, so memory stays at one page whatever the recording's length.
 *
 * Page layout: 'OggS', version 0, header type (1 continued, 2 BOS, 4 EOS), granule position
 * (int64 LE), serial, page sequence, CRC-32, segment count, lacing values, data. Granule
 * positions count 48 kHz samples including the pre-skip; the last page's granule position
 * trims the decoded stream to the exact length (RFC 7845 section 4.5).
 */
import { writeSync } from 'node:fs';

const CRC_TABLE = (() => {
  // Ogg's CRC is the non-reflected CRC-32 (polynomial 0x04C11DB7, initial 0, no final xor).
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let k = 0; k < 8; k++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    t[i] = r >>> 0;
  }
  return t;
})();

export function oggCrc32(buf: Uint8Array, crc = 0): number {
  let c = crc >>> 0;
  for (let i = 0; i < buf.length; i++) c = ((c << 8) ^ CRC_TABLE[((c >>> 24) ^ buf[i]!) & 0xff]!) >>> 0;
  return c >>> 0;
}

const HEADER_BYTES = 27;
/** Where a page's packet bytes start in the writer's buffer: after a header with 255 lacing values. */
const DATA_AT = HEADER_BYTES + 255;
/**
 * The page buffer starts with room for this many packet bytes and grows in GROW_STEP steps
 * to what the pages need (about 8 KB for a second of two 24 kbit/s streams), so a
 * low-bitrate call does not hold a buffer sized for the largest page.
 */
const INITIAL_PAGE_BYTES = 2048;
const GROW_STEP = 512;
/** Flush a page once it holds this much audio (about 1 s at 20 ms per packet)... */
const PAGE_MAX_PACKETS = 50;
/** ...or this many bytes, well under the 255 × 255 bytes a page can hold. */
const PAGE_MAX_BYTES = 16 * 1024;
/** The vendor string of OpusTags: the product, and nothing about the call. */
export const OPUS_VENDOR = 'tallenne';

export interface OggOpusWriterOptions {
  channels: 1 | 2;
  /** Informational rate of the audio before encoding (OpusHead "input sample rate"). */
  inputSampleRate: number;
  /** Samples at 48 kHz the decoder drops at the start (the encoder's look-ahead). */
  preSkip: number;
  serial?: number;
  /**
   * 0 (default): one Opus stream of `channels` (RFC 7845 mapping family 0: mono or stereo).
   * 1: one uncoupled mono stream per channel (family 1 with coupled count 0), channel i
   * from stream i; each Ogg packet is then a multistream packet (see multistreamPacket).
   */
  channelMapping?: 0 | 1;
  /** Audio packets per page before it is written (default PAGE_MAX_PACKETS, about 1 s). */
  pagePackets?: number;
}

/** RFC 6716 §3.2.1 frame length: one byte below 252, else two. */
function lengthBytes(n: number): number[] {
  if (n < 252) return [n];
  const first = 252 + ((n - 252) & 3);
  return [first, (n - first) >> 2];
}

function readLength(p: Buffer, off: number): { value: number; size: number } | null {
  if (off >= p.length) return null;
  const b = p[off]!;
  if (b < 252) return { value: b, size: 1 };
  if (off + 1 >= p.length) return null;
  return { value: b + 4 * p[off + 1]!, size: 2 };
}

/**
 * RFC 6716 Appendix B: the same Opus packet in self-delimiting framing, i.e. with one extra
 * length field just before the first frame's data, so that another stream's packet can
 * follow it. Which length that field carries depends on the packet's frame-count code.
 */
export function selfDelimitedPacket(p: Buffer): Buffer {
  const out = Buffer.allocUnsafe(selfDelimitedLength(p));
  writeSelfDelimited(p, out, 0);
  return out;
}

/** Bytes of `p` in self-delimiting framing. */
function selfDelimitedLength(p: Buffer): number {
  return p.length + lengthBytes(selfDelimitation(p).extra).length;
}

/** Writes `p` in self-delimiting framing at `out[at]`; returns the bytes written. */
function writeSelfDelimited(p: Buffer, out: Buffer, at: number): number {
  const { header, extra } = selfDelimitation(p);
  const len = lengthBytes(extra);
  p.copy(out, at, 0, header);
  for (let i = 0; i < len.length; i++) out[at + header + i] = len[i]!;
  p.copy(out, at + header + len.length, header);
  return p.length + len.length;
}

/** Where the extra length field goes (after `header` bytes) and the length it carries. */
function selfDelimitation(p: Buffer): { header: number; extra: number } {
  if (p.length < 1) throw new RangeError('empty Opus packet');
  const code = p[0]! & 3;
  let header = 1;
  let extra: number;
  if (code === 0) extra = p.length - 1;
  else if (code === 1) extra = (p.length - 1) / 2;
  else if (code === 2) {
    const n1 = readLength(p, 1);
    if (!n1) throw new RangeError('truncated code 2 Opus packet');
    header = 1 + n1.size;
    extra = p.length - header - n1.value;
  } else {
    if (p.length < 2) throw new RangeError('truncated code 3 Opus packet');
    const vbr = (p[1]! & 0x80) !== 0;
    const padded = (p[1]! & 0x40) !== 0;
    const count = p[1]! & 0x3f;
    if (count === 0) throw new RangeError('code 3 Opus packet with no frames');
    let off = 2;
    let padding = 0;
    if (padded) {
      for (;;) {
        if (off >= p.length) throw new RangeError('truncated Opus padding length');
        const b = p[off++]!;
        padding += b === 255 ? 254 : b;
        if (b !== 255) break;
      }
    }
    let listed = 0;
    if (vbr) {
      for (let i = 0; i < count - 1; i++) {
        const l = readLength(p, off);
        if (!l) throw new RangeError('truncated Opus frame lengths');
        listed += l.value;
        off += l.size;
      }
    }
    header = off;
    const data = p.length - off - padding;
    extra = vbr ? data - listed : data / count;
  }
  if (!Number.isInteger(extra) || extra < 0) throw new RangeError('inconsistent Opus packet lengths');
  return { header, extra };
}

/**
 * One Ogg packet of a family-1 multistream file: every stream's packet but the last in
 * self-delimiting framing, the last as it is (RFC 7845 §5.1.1, RFC 6716 Appendix B).
 */
export function multistreamPacket(packets: readonly Buffer[]): Buffer {
  if (packets.length === 0) throw new RangeError('no stream packets');
  const parts = packets.map((p, i) => (i < packets.length - 1 ? selfDelimitedPacket(p) : p));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/**
 * Where pages go: a file descriptor, or a sink such as the AudioStore's writer (which may
 * encrypt). A page handed to a sink is a view of the writer's reused buffer, valid only during
 * the call: a sink that keeps it copies it.
 */
export type PageSink = number | PageWriter;
export interface PageWriter {
  write(page: Uint8Array): void;
}

export class OggOpusWriter {
  private readonly sink: PageSink;
  private readonly maxPagePackets: number;
  private readonly serial: number;
  private readonly preSkip: number;
  private sequence = 0;
  /** Granule position after the last packet written (48 kHz samples, including pre-skip). */
  private granule = 0;
  /**
   * The pending page, laid out as it is written: header, room for 255 lacing values, then the
   * packets' bytes, copied in as they come. One buffer for the whole file, no Buffer per packet.
   * Its own allocation, never a slice of Node's shared 8 KB pool: a long-lived slice keeps the
   * whole pool alive (one per live call, as the per-packet buffers churn through pools).
   */
  private page = Buffer.allocUnsafeSlow(DATA_AT + INITIAL_PAGE_BYTES);
  private readonly lacing = new Uint8Array(255);
  private pagePackets = 0;
  private pageBytes = 0;
  private pageSegments = 0;
  private finished = false;
  /** Samples and bytes of the last packet queued (flush() keeps it back). */
  private lastSamples = 0;
  private lastLength = 0;
  bytesWritten = 0;
  pagesWritten = 0;

  constructor(sink: PageSink, opts: OggOpusWriterOptions) {
    if (opts.preSkip < 0 || opts.preSkip > 0xffff) throw new RangeError(`pre-skip ${opts.preSkip} out of range`);
    this.sink = sink;
    this.maxPagePackets = Math.max(1, Math.min(PAGE_MAX_PACKETS, opts.pagePackets ?? PAGE_MAX_PACKETS));
    this.serial = (opts.serial ?? (Math.random() * 0x100000000) >>> 0) >>> 0;
    this.preSkip = opts.preSkip;

    const family = opts.channelMapping ?? 0;
    const head = Buffer.alloc(family === 1 ? 21 + opts.channels : 19);
    head.write('OpusHead', 0, 'latin1');
    head.writeUInt8(1, 8);
    head.writeUInt8(opts.channels, 9);
    head.writeUInt16LE(opts.preSkip, 10);
    head.writeUInt32LE(opts.inputSampleRate, 12);
    head.writeInt16LE(0, 16);
    head.writeUInt8(family, 18);
    if (family === 1) {
      // One stream per channel, none coupled, channel i decoded from stream i.
      head.writeUInt8(opts.channels, 19);
      head.writeUInt8(0, 20);
      for (let i = 0; i < opts.channels; i++) head.writeUInt8(i, 21 + i);
    }
    this.writeHeaderPage(head, 0x02);

    const vendor = Buffer.from(OPUS_VENDOR, 'utf8');
    const tags = Buffer.alloc(8 + 4 + vendor.length + 4);
    tags.write('OpusTags', 0, 'latin1');
    tags.writeUInt32LE(vendor.length, 8);
    vendor.copy(tags, 12);
    tags.writeUInt32LE(0, 12 + vendor.length);
    this.writeHeaderPage(tags, 0);
  }

  /** A page of its own for one header packet (OpusHead, OpusTags). */
  private writeHeaderPage(packet: Buffer, flags: number): void {
    const at = this.copyIn(packet.length); // first: it may replace this.page
    packet.copy(this.page, at);
    this.flushPage(flags, true);
  }

  /** Queues one Opus packet that decodes to `samples48k` samples (960 for 20 ms). */
  writePacket(packet: Buffer, samples48k: number): void {
    const at = this.copyIn(packet.length); // first: it may replace this.page
    packet.copy(this.page, at);
    this.granule += samples48k;
    this.lastSamples = samples48k;
  }

  /**
   * Queues one multistream packet made of each stream's packet (as multistreamPacket builds
   * it), framed straight into the page: the same bytes, without a Buffer in between.
   */
  writeMultistreamPacket(packets: readonly Buffer[], samples48k: number): void {
    if (packets.length === 0) throw new RangeError('no stream packets');
    const last = packets.length - 1;
    let length = packets[last]!.length;
    for (let i = 0; i < last; i++) length += selfDelimitedLength(packets[i]!);
    let at = this.copyIn(length);
    for (let i = 0; i < last; i++) at += writeSelfDelimited(packets[i]!, this.page, at);
    packets[last]!.copy(this.page, at);
    this.granule += samples48k;
    this.lastSamples = samples48k;
  }

  /** The lacing values of a packet of `length` bytes, after the pending page's. */
  private lace(length: number): void {
    let n = length;
    while (n >= 255) {
      this.lacing[this.pageSegments++] = 255;
      n -= 255;
    }
    this.lacing[this.pageSegments++] = n;
  }

  /** Bytes this writer holds for its pending page (its whole memory beside a few numbers). */
  get bufferBytes(): number {
    return this.page.length + this.lacing.length;
  }

  /**
   * Room for one packet of `length` bytes on the pending page: its offset in this.page, to
   * be filled by the caller; the page is flushed first when the packet would not fit.
   */
  private copyIn(length: number): number {
    if (this.finished) throw new Error('OggOpusWriter: packet after finish');
    const segments = Math.floor(length / 255) + 1;
    // A full page is written only when the next packet arrives, so the last packets are
    // always still pending at finish() and end up on the EOS page that carries the trim.
    if (this.pagePackets >= this.maxPagePackets || this.pageSegments + segments > 255 || (this.pagePackets > 0 && this.pageBytes + length > PAGE_MAX_BYTES)) {
      this.flushPage(0);
    }
    const at = DATA_AT + this.pageBytes;
    if (at + length > this.page.length) {
      // Grown to what the pages need (a few times per file at most), never shrunk.
      const size = Math.max(at + length, Math.floor(this.page.length * 1.5));
      const bigger = Buffer.allocUnsafeSlow(Math.ceil(size / GROW_STEP) * GROW_STEP);
      this.page.copy(bigger, 0, 0, at);
      this.page = bigger;
    }
    this.lace(length);
    this.pagePackets++;
    this.pageBytes += length;
    this.lastLength = length;
    return at;
  }

  /**
   * Writes the last page with EOS and the granule position pre-skip + `totalSamples48k`,
   * which must not exceed what the packets written decode to (the excess is trimmed).
   */
  finish(totalSamples48k: number): void {
    if (this.finished) return;
    const end = this.preSkip + Math.max(0, Math.round(totalSamples48k));
    if (this.pagePackets === 0) throw new Error('OggOpusWriter: finish without a pending packet');
    if (end > this.granule) throw new RangeError(`end granule ${end} beyond the ${this.granule} samples written`);
    this.granule = end;
    this.flushPage(0x04, true);
    this.finished = true;
  }

  /**
   * Writes the packets queued so far as a page now (a live stream's listener hears them
   * without waiting for a full page). The last packet stays queued, so that finish() always
   * has one for the EOS page.
   */
  flush(): void {
    if (this.finished || this.pagePackets < 2) return;
    const length = this.lastLength;
    const lastAt = DATA_AT + this.pageBytes - length;
    const granule = this.granule;
    this.granule -= this.lastSamples;
    this.pagePackets--;
    this.pageBytes -= length;
    this.pageSegments -= Math.floor(length / 255) + 1;
    this.flushPage(0);
    this.granule = granule;
    // The page's header was written before DATA_AT: the kept packet's bytes are intact.
    this.page.copyWithin(DATA_AT, lastAt, lastAt + length);
    this.lace(length);
    this.pagePackets = 1;
    this.pageBytes = length;
  }

  private flushPage(flags: number, force = false): void {
    if (this.pagePackets === 0 && !force) return;
    // The header and lacing go right before the packets' bytes, so the page is one run.
    const segs = this.pageSegments;
    const start = DATA_AT - HEADER_BYTES - segs;
    const page = this.page.subarray(start, DATA_AT + this.pageBytes);
    page.write('OggS', 0, 'latin1');
    page.writeUInt8(0, 4);
    page.writeUInt8(flags, 5);
    page.writeBigUInt64LE(BigInt(this.granule), 6);
    page.writeUInt32LE(this.serial, 14);
    page.writeUInt32LE(this.sequence++, 18);
    page.writeUInt32LE(0, 22);
    page.writeUInt8(segs, 26);
    page.set(this.lacing.subarray(0, segs), HEADER_BYTES);
    page.writeUInt32LE(oggCrc32(page), 22);
    if (typeof this.sink === 'number') {
      let off = 0;
      while (off < page.length) off += writeSync(this.sink, page, off, page.length - off);
    } else this.sink.write(page);
    this.pagePackets = 0;
    this.pageBytes = 0;
    this.pageSegments = 0;
    this.bytesWritten += page.length;
    this.pagesWritten++;
  }
}
