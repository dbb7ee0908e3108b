import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OggOpusWriter, multistreamPacket, oggCrc32, selfDelimitedPacket } from '../../../src/encoder/ogg.js';
import { createOpusEncoder } from '../../../src/encoder/opus-native.js';
import { tempDir } from '../../support/cleanup.js';
import { inputOptionsFor } from '../../support/audio.js';

interface Page {
  flags: number;
  granule: bigint;
  serial: number;
  sequence: number;
  crc: number;
  raw: Buffer;
  packets: Buffer[];
}

/** Splits an Ogg file into pages (packets that span pages are not joined: not needed here). */
function pages(file: Buffer): Page[] {
  const out: Page[] = [];
  let o = 0;
  while (o < file.length) {
    expect(file.toString('latin1', o, o + 4)).toBe('OggS');
    const nseg = file[o + 26]!;
    const lacing = file.subarray(o + 27, o + 27 + nseg);
    let len = 0;
    const packets: Buffer[] = [];
    let start = o + 27 + nseg;
    let cur = 0;
    for (const l of lacing) {
      cur += l;
      len += l;
      if (l < 255) {
        packets.push(file.subarray(start, start + cur));
        start += cur;
        cur = 0;
      }
    }
    const raw = file.subarray(o, o + 27 + nseg + len);
    out.push({ flags: file[o + 5]!, granule: file.readBigUInt64LE(o + 6), serial: file.readUInt32LE(o + 14), sequence: file.readUInt32LE(o + 18), crc: file.readUInt32LE(o + 22), raw, packets });
    o += raw.length;
  }
  return out;
}

function crcOfPage(raw: Buffer): number {
  const copy = Buffer.from(raw);
  copy.writeUInt32LE(0, 22);
  return oggCrc32(copy);
}

describe('oggCrc32', () => {
  it('is the unreflected CRC-32 with polynomial 0x04C11DB7, no init and no final xor', () => {
    // CRC-32/CKSUM of "123456789" is 0x765E7680 with a final xor of all ones; Ogg has none.
    expect(oggCrc32(Buffer.from('123456789'))).toBe((0x765e7680 ^ 0xffffffff) >>> 0);
    expect(oggCrc32(Buffer.alloc(0))).toBe(0);
  });

  it('verifies every page of a file made by opusenc', () => {
    const dir = tempDir('ogg');
    execFileSync('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', join(dir, 't.wav'), 'synth', '1.5', 'sine', '440']);
    execFileSync('opusenc', ['--quiet', join(dir, 't.wav'), join(dir, 't.opus')]);
    const ps = pages(readFileSync(join(dir, 't.opus')));
    expect(ps.length).toBeGreaterThan(2);
    for (const p of ps) expect(crcOfPage(p.raw)).toBe(p.crc);
    // And a flipped byte is caught.
    const bad = Buffer.from(ps[2]!.raw);
    bad[bad.length - 1]! ^= 1;
    expect(crcOfPage(bad)).not.toBe(ps[2]!.crc);
  });
});

describe('OggOpusWriter', () => {
  function writeFile(frames: number, totalSamples48k: number, preSkip = 312): { file: string; data: Buffer } {
    const dir = tempDir('ogg');
    const file = join(dir, 'w.opus');
    const fd = openSync(file, 'w');
    const w = new OggOpusWriter(fd, { channels: 2, inputSampleRate: 8000, preSkip, serial: 0x1234abcd });
    const enc = createOpusEncoder({ sampleRate: 8000, channels: 2, bitrate: 24000, complexity: 5 });
    const pcm = Buffer.alloc(160 * 4);
    for (let f = 0; f < frames; f++) {
      for (let i = 0; i < 160; i++) {
        const v = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (f * 160 + i)) / 8000));
        pcm.writeInt16LE(v, i * 4);
        pcm.writeInt16LE(v, i * 4 + 2);
      }
      w.writePacket(enc.encode(pcm), 960);
    }
    w.finish(totalSamples48k);
    closeSync(fd);
    return { file, data: readFileSync(file) };
  }

  it('writes OpusHead and OpusTags as RFC 7845 says, with no call data', () => {
    const { data } = writeFile(10, 9000);
    const ps = pages(data);
    expect(ps[0]!.flags).toBe(0x02);
    expect(ps[0]!.granule).toBe(0n);
    const head = ps[0]!.packets[0]!;
    expect(head.toString('latin1', 0, 8)).toBe('OpusHead');
    expect(head[8]).toBe(1);
    expect(head[9]).toBe(2);
    expect(head.readUInt16LE(10)).toBe(312);
    expect(head.readUInt32LE(12)).toBe(8000);
    expect(head.readInt16LE(16)).toBe(0);
    expect(head[18]).toBe(0);
    const tags = ps[1]!.packets[0]!;
    expect(tags.toString('latin1', 0, 8)).toBe('OpusTags');
    const vlen = tags.readUInt32LE(8);
    expect(tags.toString('utf8', 12, 12 + vlen)).toBe('tallenne');
    expect(tags.readUInt32LE(12 + vlen)).toBe(0);
    expect(tags.length).toBe(12 + vlen + 4);
  });

  it('numbers pages, checksums them, and ends with EOS at pre-skip + the exact length', () => {
    const frames = 130;
    const total = 130 * 960 - 312 - 500;
    const { file, data } = writeFile(frames, total);
    const ps = pages(data);
    ps.forEach((p, i) => {
      expect(p.sequence).toBe(i);
      expect(p.serial).toBe(0x1234abcd);
      expect(crcOfPage(p.raw)).toBe(p.crc);
    });
    const audio = ps.slice(2);
    let packets = 0;
    for (const p of audio.slice(0, -1)) {
      packets += p.packets.length;
      expect(p.granule).toBe(BigInt(packets * 960));
      expect(p.flags & 0x04).toBe(0);
    }
    const last = audio[audio.length - 1]!;
    expect(last.flags & 0x04).toBe(0x04);
    expect(last.packets.length).toBeGreaterThan(0);
    expect(last.granule).toBe(BigInt(312 + total));
    expect(packets + last.packets.length).toBe(frames);

    const info = execFileSync('opusinfo', [file]).toString();
    expect(info).toMatch(/Pre-skip: 312/);
    const decoded = execFileSync('ffmpeg', ['-v', 'error', ...inputOptionsFor(file), '-i', file, '-f', 's16le', '-ac', '2', '-ar', '48000', '-']);
    expect(decoded.length / 4).toBe(total);
  });

  it('hands pages to a sink, and flush() writes a page of what is queued but the last packet', () => {
    const out: Buffer[] = [];
    const w = new OggOpusWriter({ write: (page) => out.push(Buffer.from(page)) }, { channels: 1, inputSampleRate: 8000, preSkip: 312, serial: 7, pagePackets: 10 });
    expect(out).toHaveLength(2);
    const packet = Buffer.from([0xf8, 0xff, 0xfe]);
    for (let i = 0; i < 3; i++) w.writePacket(packet, 960);
    w.flush();
    expect(out).toHaveLength(3);
    w.flush();
    expect(out).toHaveLength(3);
    for (let i = 0; i < 12; i++) w.writePacket(packet, 960);
    w.finish(15 * 960 - 312);
    const ps = pages(Buffer.concat(out));
    // The flushed page holds two packets (granule 2 × 960); pages of 10 after it; EOS last.
    expect(ps.slice(2).map((p) => [p.packets.length, Number(p.granule)])).toEqual([[2, 1920], [10, 12 * 960], [3, 15 * 960]]);
    expect(ps.at(-1)!.flags & 0x04).toBe(0x04);
    for (const p of ps) expect(crcOfPage(p.raw)).toBe(p.crc);
  });

  it('refuses an end beyond what was written', () => {
    const dir = tempDir('ogg');
    const fd = openSync(join(dir, 'x.opus'), 'w');
    const w = new OggOpusWriter(fd, { channels: 1, inputSampleRate: 8000, preSkip: 312 });
    w.writePacket(Buffer.from([0xf8, 0xff, 0xfe]), 960);
    expect(() => w.finish(960)).toThrow(RangeError);
    closeSync(fd);
    writeFileSync(join(dir, 'done'), '');
  });
});

describe('self-delimiting Opus packets (RFC 6716 Appendix B)', () => {
  const frame = (n: number, fill: number) => Buffer.alloc(n, fill);

  it('adds the frame length after the TOC of a code 0 packet, in one or two bytes', () => {
    const p = Buffer.concat([Buffer.from([0x08]), frame(40, 7)]);
    expect([...selfDelimitedPacket(p).subarray(0, 3)]).toEqual([0x08, 40, 7]);
    expect(selfDelimitedPacket(p).length).toBe(42);
    const big = Buffer.concat([Buffer.from([0x08]), frame(300, 1)]);
    const sd = selfDelimitedPacket(big);
    // 300 = 252 + (48 & 3) + 4 × 12: first byte 252, second byte 12.
    expect([sd[1], sd[2]]).toEqual([252, 12]);
    expect(sd[1]! + 4 * sd[2]!).toBe(300);
    expect(sd.subarray(3).equals(big.subarray(1))).toBe(true);
  });

  it('carries the shared frame length for code 1 and the second frame length for code 2', () => {
    const c1 = Buffer.concat([Buffer.from([0x09]), frame(20, 1), frame(20, 2)]);
    expect([...selfDelimitedPacket(c1).subarray(0, 2)]).toEqual([0x09, 20]);
    const c2 = Buffer.concat([Buffer.from([0x0a, 10]), frame(10, 1), frame(25, 2)]);
    const sd = selfDelimitedPacket(c2);
    expect([...sd.subarray(0, 3)]).toEqual([0x0a, 10, 25]);
    expect(sd.length).toBe(c2.length + 1);
  });

  it('places the extra length after the padding and frame lengths of a code 3 packet', () => {
    // VBR, padded, 3 frames: count byte 0xC3, padding 2, lengths 5 and 6, last frame 7.
    const vbr = Buffer.concat([Buffer.from([0x0b, 0xc3, 2, 5, 6]), frame(5, 1), frame(6, 2), frame(7, 3), Buffer.alloc(2)]);
    const sd = selfDelimitedPacket(vbr);
    expect([...sd.subarray(0, 6)]).toEqual([0x0b, 0xc3, 2, 5, 6, 7]);
    // CBR, 2 frames of 9 bytes.
    const cbr = Buffer.concat([Buffer.from([0x0b, 0x02]), frame(9, 1), frame(9, 2)]);
    expect([...selfDelimitedPacket(cbr).subarray(0, 3)]).toEqual([0x0b, 0x02, 9]);
    expect(() => selfDelimitedPacket(Buffer.from([0x0b, 0x02, 1, 2, 3]))).toThrow(RangeError);
    expect(() => selfDelimitedPacket(Buffer.alloc(0))).toThrow(RangeError);
  });

  it('joins stream packets with all but the last self-delimited', () => {
    const a = Buffer.concat([Buffer.from([0x08]), frame(3, 1)]);
    const b = Buffer.concat([Buffer.from([0x08]), frame(4, 2)]);
    expect([...multistreamPacket([a, b])]).toEqual([0x08, 3, 1, 1, 1, 0x08, 2, 2, 2, 2]);
    expect(multistreamPacket([b]).equals(b)).toBe(true);
  });

  it('frames multistream packets in place exactly as multistreamPacket does, across pages', () => {
    const dir = tempDir('ogg-ms-direct');
    const enc = [0, 1].map(() => createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 }));
    const packets: Buffer[][] = [];
    for (let f = 0; f < 180; f++) {
      const pcm = [0, 1].map((c) => {
        const x = new Int16Array(160);
        for (let i = 0; i < 160; i++) x[i] = Math.round(9000 * Math.sin((2 * Math.PI * (300 + 500 * c) * (f * 160 + i)) / 8000));
        return x;
      });
      packets.push(pcm.map((x, c) => enc[c]!.encode(Buffer.from(x.buffer))));
    }
    const write = (name: string, direct: boolean): Buffer => {
      const file = join(dir, name);
      const fd = openSync(file, 'w');
      const w = new OggOpusWriter(fd, { channels: 2, channelMapping: 1, inputSampleRate: 8000, preSkip: 312, serial: 7 });
      for (const p of packets) {
        if (direct) w.writeMultistreamPacket(p, 960);
        else w.writePacket(multistreamPacket(p), 960);
      }
      w.finish(packets.length * 960 - 312);
      closeSync(fd);
      return readFileSync(file);
    };
    const direct = write('direct.opus', true);
    expect(pages(direct).length).toBeGreaterThan(4);
    expect(direct.equals(write('joined.opus', false))).toBe(true);
  });

  it('writes a family 1 file of two mono streams that ffmpeg decodes as two separate channels', () => {
    const dir = tempDir('ogg-ms');
    const file = join(dir, 'dual.opus');
    const fd = openSync(file, 'w');
    const w = new OggOpusWriter(fd, { channels: 2, channelMapping: 1, inputSampleRate: 8000, preSkip: 312 });
    const left = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    const right = createOpusEncoder({ sampleRate: 8000, channels: 1, bitrate: 12000, complexity: 5 });
    const frames = 100;
    for (let f = 0; f < frames; f++) {
      const l = new Int16Array(160);
      const r = new Int16Array(160);
      for (let i = 0; i < 160; i++) {
        const t = (f * 160 + i) / 8000;
        l[i] = Math.round(9000 * Math.sin(2 * Math.PI * 440 * t));
        r[i] = f < 50 ? 0 : Math.round(9000 * Math.sin(2 * Math.PI * 1000 * t));
      }
      const pl = left.encode(Buffer.from(l.buffer));
      const pr = right.encode(Buffer.from(r.buffer));
      w.writePacket(multistreamPacket([pl, pr]), 960);
    }
    w.finish(frames * 960 - 312);
    closeSync(fd);
    const bytes = readFileSync(file);
    const head = pages(bytes)[0]!.packets[0]!;
    expect(head.length).toBe(23);
    expect([head[9], head[18], head[19], head[20], head[21], head[22]]).toEqual([2, 1, 2, 0, 0, 1]);
    expect(execFileSync('opusinfo', [file]).toString()).toMatch(/Channels: 2/);
    const pcm = execFileSync('ffmpeg', ['-v', 'error', ...inputOptionsFor(file), '-i', file, '-f', 's16le', '-ar', '8000', '-']);
    const s = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
    const peakOf = (ch: number, from: number, to: number) => {
      let m = 0;
      for (let i = from; i < to; i++) m = Math.max(m, Math.abs(s[2 * i + ch]!));
      return m;
    };
    // Left has its tone throughout; right is silent for the first half, then has its own.
    expect(s.length).toBe(2 * (frames * 160 - 52));
    expect(peakOf(0, 1000, 7000)).toBeGreaterThan(4000);
    expect(peakOf(1, 1000, 7500)).toBeLessThan(50);
    expect(peakOf(1, 9000, 15000)).toBeGreaterThan(4000);
  });
});
