import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSpool, type EncodeJob, type EncodeResult } from '../../../src/encoder/encode-spool.js';
import { MASKED_DTMF_DIGIT } from '../../../src/encoder/dtmf.js';
import { RECORD_HEADER_BYTES, RecordType, SPOOL_MAGIC_SEALED, writeRecordHeader } from '../../../src/spool/format.js';
import { channelOf, decodeWithFfmpeg, peak, toneLevel, writeSpoolFixture, type FixtureSpec } from '../../support/spool-fixture.js';
import { tempDir } from '../../support/cleanup.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { SPOOL_TAG_BYTES, newSpoolKey } from '../../../src/spool/cipher.js';
import { readSpool } from '../../../src/spool/reader.js';
import { estimateQuality, roundMos } from '../../../src/quality/emodel.js';
import { stagedFile, stagingIn } from '../../support/store.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('encode-spool');
});

let n = 0;
async function run(spec: Omit<FixtureSpec, 'path'>, job: Partial<EncodeJob> = {}) {
  const name = `call${++n}`;
  const fx = await writeSpoolFixture({ ...spec, path: join(dir, `${name}.spool`) });
  const result = await encodeSpool({ spoolPath: fx.path, staging: stagingIn(dir), id: `01JTEST${String(n).padStart(19, '0')}`, complexity: 5, bitrate: 32000, skipSilence: false, maskDtmf: false, ...job });
  const file = stagedFile(result);
  return { fx, result, file };
}

function decodeStereo(file: string, rate = 8000): { left: Int16Array; right: Int16Array } {
  const pcm = decodeWithFfmpeg(file, rate, 2);
  return { left: channelOf(pcm, 0, 2), right: channelOf(pcm, 1, 2) };
}

const ms = (t: number, rate = 8000) => Math.round((t * rate) / 1000);
/**
 * Tones go in at half scale (16384). libopus's speech modes take a long steady tone for
 * background noise and let its level sag by up to ~5 dB, so "the tone is there" means at
 * least half its level; "not there" is an order of magnitude below.
 */
const TONE_MIN = 8000;

function rms(x: Int16Array, from = 0, to = x.length): number {
  let e = 0;
  for (let i = from; i < to; i++) e += x[i]! * x[i]!;
  return Math.sqrt(e / Math.max(1, to - from));
}

function maxStep(x: Int16Array, from: number, to: number): number {
  let m = 0;
  for (let i = Math.max(1, from); i < to; i++) m = Math.max(m, Math.abs(x[i]! - x[i - 1]!));
  return m;
}

describe('encodeSpool', () => {
  it('puts the customer left and the agent right, whoever sends first, for exactly the call’s length', async () => {
    const { fx, result, file } = await run({
      durationMs: 6000,
      legs: [
        // The agent's leg is offered first and starts sending first.
        { index: 0, channel: 1, role: 'agent', codec: 'PCMA', toneHz: 1000 },
        { index: 1, channel: 0, role: 'customer', codec: 'PCMU', toneHz: 440, startMs: 500 },
      ],
    });
    expect(result.status).toBe('complete');
    expect(result.endReason).toBe('bye');
    expect(result.durationMs).toBe(6000);
    expect(result.answeredAt).toBe(fx.answeredAt);
    expect(result.endedAt).toBe(fx.endedAt);
    expect(result.sampleRate).toBe(8000);
    expect(result.channels).toBe(2);
    expect(result.staged!.key).toMatch(/^recordings\/2026\/11\/22\/01JTEST\d+\.opus$/);
    expect(readFileSync(file).length).toBe(result.staged!.bytes);
    expect(result.staged!.storedBytes).toBe(result.staged!.bytes);
    expect(existsSync(fx.path)).toBe(true);

    expect(execFileSync('opusinfo', [file]).toString()).toMatch(/Original sample rate: 8000 Hz/);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', file]).toString());
    expect(probe.streams[0].channels).toBe(2);
    expect(probe.streams[0].codec_name).toBe('opus');
    expect(Math.abs(Number(probe.format.duration) - 6)).toBeLessThan(0.06);

    const { left, right } = decodeStereo(file);
    expect(left.length).toBe(48000);
    const a = ms(1000);
    const b = ms(5500);
    // Each leg is its own mono stream, so nothing of one side may leak into the other: 20 dB apart at least.
    expect(toneLevel(left, 440, 8000, a, b)).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(left, 1000, 8000, a, b)).toBeLessThan(toneLevel(left, 440, 8000, a, b) / 10);
    expect(toneLevel(right, 1000, 8000, a, b)).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(right, 440, 8000, a, b)).toBeLessThan(toneLevel(right, 1000, 8000, a, b) / 10);
    // The customer started 0.5 s after answer: silence before, tone after.
    expect(peak(left, ms(60), ms(480))).toBeLessThan(300);
    expect(toneLevel(left, 440, 8000, ms(600), ms(900))).toBeGreaterThan(TONE_MIN);

    // No loss, no jitter, 20 ms packets: the E-model's rating of a 40 ms one-way delay.
    const cleanMos = roundMos(estimateQuality({ codec: 'PCMA', packets: 300, lost: 0, jitterMs: 0, packetMs: 20 })!.mos);
    expect(cleanMos).toBeGreaterThan(4.35);
    expect(result.legs).toEqual([
      { index: 0, role: 'agent', codec: 'PCMA', packets: 300, lost: 0, ssrcs: 1, jitterMs: 0, mos: cleanMos },
      { index: 1, role: 'customer', codec: 'PCMU', packets: 275, lost: 0, ssrcs: 1, jitterMs: 0, mos: cleanMos },
    ]);
    // Frames are counted per leg stream: two mono streams × 300 frames of 20 ms (+1 for look-ahead).
    expect(result.framesEncoded + result.framesSkipped).toBeGreaterThanOrEqual(600);
    expect(result.framesEncoded + result.framesSkipped).toBeLessThanOrEqual(602);
    expect(result.encodeCpuMs).toBeGreaterThanOrEqual(0);
    // Nothing personal in the Ogg tags: the only text is the vendor string.
    expect(execFileSync('opusinfo', [file]).toString()).not.toMatch(/fixture-call/);
  });

  it('records a G.722 leg at 16 kHz, keeping its upper band, next to a G.711 leg', async () => {
    const { result, file } = await run({
      durationMs: 3000,
      legs: [
        { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
        { index: 1, channel: 1, codec: 'G722', toneHz: 6000, amplitude: 0.4 },
      ],
    });
    expect(result.sampleRate).toBe(16000);
    expect(execFileSync('opusinfo', [file]).toString()).toMatch(/Original sample rate: 16000 Hz/);
    const { left, right } = decodeStereo(file, 16000);
    expect(left.length).toBe(48000);
    expect(toneLevel(right, 6000, 16000, ms(500, 16000), ms(2800, 16000))).toBeGreaterThan(6000);
    expect(toneLevel(left, 440, 16000, ms(500, 16000), ms(2800, 16000))).toBeGreaterThan(TONE_MIN);
    // The upsampled narrowband leg has no image of 440 Hz at 8000 - 440 Hz.
    expect(toneLevel(left, 7560, 16000, ms(500, 16000), ms(2800, 16000))).toBeLessThan(500);
  });

  it('decodes Opus and 48 kHz L16 legs', async () => {
    const { result, file } = await run({
      durationMs: 2000,
      legs: [
        { index: 0, channel: 0, codec: 'OPUS', toneHz: 600 },
        { index: 1, channel: 1, codec: 'L16', l16Rate: 48000, toneHz: 1500 },
      ],
    });
    expect(result.sampleRate).toBe(16000);
    const { left, right } = decodeStereo(file, 16000);
    expect(toneLevel(left, 600, 16000, ms(300, 16000), ms(1800, 16000))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(right, 1500, 16000, ms(300, 16000), ms(1800, 16000))).toBeGreaterThan(TONE_MIN);
    expect(result.legs.map((l) => l.codec)).toEqual(['OPUS', 'L16']);
  });

  it('marks a spool without END as truncated and keeps the audio up to the last packet', async () => {
    const { fx, result, file } = await run({
      durationMs: 4000,
      end: false,
      legs: [
        { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
        { index: 1, channel: 1, codec: 'PCMU', toneHz: 1000, stopMs: 2000 },
      ],
    });
    expect(result.status).toBe('truncated');
    expect(result.endReason).toBe('spool-without-end');
    expect(result.endedAt).toBe(fx.lastTime);
    expect(result.durationMs).toBe(fx.lastTime - fx.answeredAt);
    const { left, right } = decodeStereo(file);
    expect(Math.abs(left.length - ms(result.durationMs))).toBeLessThanOrEqual(1);
    expect(toneLevel(left, 440, 8000, ms(3500), ms(3950))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(right, 1000, 8000, ms(1500), ms(1950))).toBeGreaterThan(TONE_MIN);
    expect(peak(right, ms(2100))).toBeLessThan(300);
  });

  it('writes silence for a pause, ignores packets sent during it, and reports the interval', async () => {
    const { result, file } = await run({
      durationMs: 5000,
      pauses: [[1500, 3000]],
      legs: [
        { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
        { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
      ],
    });
    expect(result.pauses).toEqual([{ startMs: 1500, endMs: 3000 }]);
    const { left, right } = decodeStereo(file);
    expect(peak(left, ms(1560), ms(2960))).toBeLessThan(200);
    expect(peak(right, ms(1560), ms(2960))).toBeLessThan(200);
    expect(toneLevel(left, 440, 8000, ms(500), ms(1400))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(left, 440, 8000, ms(3200), ms(4800))).toBeGreaterThan(TONE_MIN);
  });

  it('closes a pause that was never resumed at the end of the call', async () => {
    const { result } = await run({ durationMs: 2000, pauses: [[1200, 99999]], legs: [{ index: 0, channel: 0, codec: 'PCMU', toneHz: 440 }] });
    expect(result.pauses).toEqual([{ startMs: 1200, endMs: 2000 }]);
  });

  it('stores DTMF events once each, in place, and never as audio', async () => {
    const dtmf = [
      { atMs: 1000, digit: '5', durationMs: 200 },
      { atMs: 2000, digit: '#', durationMs: 120 },
      { atMs: 2600, digit: 'A', durationMs: 100 },
    ];
    const legs = [
      { index: 0, channel: 0 as const, codec: 'PCMU' as const, toneHz: null, dtmf },
      { index: 1, channel: 1 as const, codec: 'PCMA' as const, toneHz: 1000 },
    ];
    const { result, file } = await run({ durationMs: 3500, legs });
    expect(result.dtmf.map((d) => d.digit)).toEqual(['5', '#', 'A']);
    result.dtmf.forEach((d, i) => {
      expect(d.leg).toBe(0);
      expect(d.durationMs).toBe(dtmf[i]!.durationMs);
      // Placed by its RTP timestamp on the leg's anchor (first packet arrived at 20 ms).
      expect(Math.abs(d.atMs - (dtmf[i]!.atMs + 20))).toBeLessThanOrEqual(1);
    });
    const { left } = decodeStereo(file);
    // (The first 60 ms are skipped: libopus needs a few frames to settle the stereo image
    // when the other side's tone starts, and leaks some of it meanwhile.)
    expect(peak(left, ms(60))).toBeLessThan(300);
    expect(result.legs[0]!.packets).toBeGreaterThan(100);

    const masked = await run({ durationMs: 3500, legs }, { maskDtmf: true });
    expect(masked.result.dtmf.map((d) => d.digit)).toEqual([MASKED_DTMF_DIGIT, MASKED_DTMF_DIGIT, MASKED_DTMF_DIGIT]);
    expect(masked.result.dtmf.map((d) => d.atMs)).toEqual(result.dtmf.map((d) => d.atMs));
  });

  it('survives loss, reordering, duplicates, comfort noise, an SSRC change, a timestamp jump and a silent leg', async () => {
    const { result, file } = await run({
      durationMs: 8000,
      legs: [
        {
          index: 0,
          channel: 0,
          codec: 'PCMU',
          toneHz: 440,
          lose: new Set([10, 11, 12, 40]),
          delay: new Map([
            [20, 45],
            [21, 10],
            [60, 300],
          ]),
          duplicate: new Set([30, 31, 90]),
          comfortNoise: [[2000, 3000]],
          ssrcChangeAtMs: 4000,
          tsJump: { atMs: 6000, by: 8000 * 3600 },
        },
        { index: 1, channel: 1, codec: 'PCMA', silent: true },
      ],
    });
    const leg0 = result.legs[0]!;
    expect(leg0.ssrcs).toBe(2);
    expect(leg0.lost).toBe(4);
    expect(result.legs[1]).toEqual({ index: 1, role: 'agent', codec: 'PCMA', packets: 0, lost: 0, ssrcs: 0, jitterMs: 0 });
    const { left, right } = decodeStereo(file);
    expect(left.length).toBe(64000);
    expect(right.length).toBe(64000);
    // The silent agent leg is silence (bar brief stereo-coding leaks at the tone's onsets).
    expect(rms(right)).toBeLessThan(150);
    expect(toneLevel(right, 440, 8000)).toBeLessThan(300);
    // Comfort noise is silence, the tone is back after it, across the SSRC change and the jump.
    expect(peak(left, ms(2100), ms(2950))).toBeLessThan(300);
    for (const [a, b] of [
      [1000, 1900],
      [3200, 3900],
      [4200, 5900],
      [6200, 7900],
    ]) {
      expect(toneLevel(left, 440, 8000, ms(a!), ms(b!))).toBeGreaterThan(TONE_MIN);
    }
    // The reordered packets landed where they belong: no hole where packet 20 and 60 play.
    expect(toneLevel(left, 440, 8000, ms(20 + 20 * 20), ms(20 + 20 * 21))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(left, 440, 8000, ms(20 + 20 * 60), ms(20 + 20 * 61))).toBeGreaterThan(TONE_MIN);
  });

  it('skips silent frames with the encoder’s own silence packet, without clicks at the edges', async () => {
    const spec = {
      durationMs: 6000,
      legs: [
        { index: 0, channel: 0 as const, codec: 'PCMU' as const, toneHz: 440, gaps: [[1000, 3000]] as Array<[number, number]> },
        { index: 1, channel: 1 as const, codec: 'PCMU' as const, toneHz: 1000, gaps: [[1000, 3000]] as Array<[number, number]> },
      ],
    };
    const skipped = await run(spec, { skipSilence: true });
    const full = await run(spec, { skipSilence: false });
    expect(skipped.result.framesSkipped).toBeGreaterThan(80);
    expect(skipped.result.framesEncoded + skipped.result.framesSkipped).toBe(full.result.framesEncoded);
    expect(full.result.framesSkipped).toBe(0);
    const s = decodeStereo(skipped.file);
    const f = decodeStereo(full.file);
    expect(s.left.length).toBe(f.left.length);
    // Inside the gap: silence.
    expect(peak(s.left, ms(1200), ms(2950))).toBeLessThan(100);
    expect(peak(s.right, ms(1200), ms(2950))).toBeLessThan(100);
    // No click at either edge: no sample and no sample-to-sample step beyond what the
    // steady tone itself has (a click is a jump the tone never makes).
    for (const [x, y] of [
      [s.left, f.left],
      [s.right, f.right],
    ] as const) {
      const steadyPeak = peak(x, ms(4000), ms(5000));
      const steadyStep = maxStep(x, ms(4000), ms(5000));
      for (const edge of [1020, 3020]) {
        expect(peak(x, ms(edge - 100), ms(edge + 150))).toBeLessThan(steadyPeak * 1.25);
        expect(maxStep(x, ms(edge - 100), ms(edge + 150))).toBeLessThan(steadyStep * 1.25);
      }
      // Until the first skipped frame the two files are the same.
      let same = 0;
      while (same < ms(1000) && x[same] === y[same]) same++;
      expect(same).toBe(ms(1000));
    }
    expect(toneLevel(s.left, 440, 8000, ms(3300), ms(5800))).toBeGreaterThan(TONE_MIN);
  });

  it('gates each leg on its own: in a conversation the listening leg is not run through the encoder', async () => {
    // One side talks while the other listens, then they swap: neither leg is ever digital
    // silence on both channels at once, which a stereo encoder would have needed to skip.
    const spec = {
      durationMs: 8000,
      legs: [
        { index: 0, channel: 0 as const, codec: 'PCMU' as const, toneHz: 440, gaps: [[4000, 8000]] as Array<[number, number]> },
        { index: 1, channel: 1 as const, codec: 'PCMU' as const, toneHz: 1000, gaps: [[0, 4000]] as Array<[number, number]> },
      ],
    };
    const gated = await run(spec, { skipSilence: true });
    const full = await run(spec, { skipSilence: false });
    // About 3.6 s of each leg's 4 s of silence (after the 200 ms hang-over) is skipped.
    expect(gated.result.framesSkipped).toBeGreaterThan(300);
    expect(gated.result.framesEncoded + gated.result.framesSkipped).toBe(full.result.framesEncoded);
    const g = decodeStereo(gated.file);
    expect(peak(g.left, ms(4600), ms(7900))).toBeLessThan(100);
    expect(peak(g.right, ms(100), ms(3900))).toBeLessThan(100);
    expect(toneLevel(g.left, 440, 8000, ms(500), ms(3900))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(g.right, 1000, 8000, ms(4500), ms(7500))).toBeGreaterThan(TONE_MIN);
    // The onset after the gated stretch is not clipped: the first 100 ms already carry the tone.
    expect(toneLevel(g.right, 1000, 8000, ms(4020), ms(4120))).toBeGreaterThan(TONE_MIN);
  });

  it('leaves no temp file behind and reports a spool that is not a spool', async () => {
    const bad = join(dir, 'not-a-spool');
    execFileSync('sh', ['-c', `printf 'hello world, not a spool' > ${bad}`]);
    await expect(encodeSpool({ spoolPath: bad, staging: stagingIn(dir), id: 'BAD', complexity: 5, bitrate: 24000, skipSilence: true, maskDtmf: false })).rejects.toMatchObject({
      code: 'TALLENNE_SPOOL_CORRUPT',
    });
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
    expect(walk(join(dir, 'recordings')).filter((f) => f.endsWith('.staged') && f.includes('BAD'))).toEqual([]);
  });

  it('skips a damaged META that is valid JSON of another shape (a leg of null, as the fuzzer made it)', async () => {
    const name = `call${++n}`;
    const fx = await writeSpoolFixture({ path: join(dir, `${name}.spool`), durationMs: 1000, legs: [{ index: 0, channel: 0, codec: 'PCMU', toneHz: 440 }] });
    const payload = Buffer.from('{"answeredAt":1,"legs":[null]}', 'utf8');
    const rec = Buffer.alloc(RECORD_HEADER_BYTES + payload.length);
    writeRecordHeader(rec, 0, RecordType.Meta, 0, payload.length, Date.now());
    payload.copy(rec, RECORD_HEADER_BYTES);
    appendFileSync(fx.path, rec);
    const result = await encodeSpool({ spoolPath: fx.path, staging: stagingIn(dir), id: `01JTEST${String(n).padStart(19, '0')}`, complexity: 5, bitrate: 32000, skipSilence: false, maskDtmf: false });
    expect(result.legs.map((l) => l.index)).toEqual([0]);
    expect(result.legs[0]!.packets).toBeGreaterThan(40);
  });
});

describe('encodeSpool on a long call', () => {
  it('encodes 30 minutes with bounded memory', { timeout: 180_000 }, async () => {
    const fx = await writeSpoolFixture({
      path: join(dir, 'long.spool'),
      durationMs: 30 * 60 * 1000,
      legs: [
        { index: 0, channel: 0, codec: 'PCMU', toneHz: 440, gaps: [[600_000, 660_000]] },
        { index: 1, channel: 1, codec: 'G722', toneHz: 1000 },
      ],
    });
    globalThis.gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    const timer = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 50);
    let result: EncodeResult;
    try {
      result = await encodeSpool({ spoolPath: fx.path, staging: stagingIn(dir), id: 'LONGCALL', complexity: 0, bitrate: 16000, skipSilence: true, maskDtmf: false });
    } finally {
      clearInterval(timer);
    }
    expect(result.durationMs).toBe(1_800_000);
    expect(result.sampleRate).toBe(16000);
    // Buffering the call would need 30 min × 16 kHz × 2 ch × 2 B = 115 MB of PCM alone.
    expect(peakRss - base.rss).toBeLessThan(80 * 1024 * 1024);
    expect(peakHeap - base.heapUsed).toBeLessThan(60 * 1024 * 1024);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', stagedFile(result)]).toString());
    expect(Math.abs(Number(probe.format.duration) - 1800)).toBeLessThan(0.06);
  });
});

/** RTP records per leg (legs 0 and 1) that a sealed spool yields with its key. */
async function rtpPerLeg(path: string, key: Buffer): Promise<number[]> {
  const counts = [0, 0];
  await readSpool(path, (r) => {
    if (r.type === RecordType.Rtp) counts[r.leg]!++;
  }, { key });
  return counts;
}

describe('encodeSpool on a sealed spool', () => {
  const legs = [
    { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
    { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
  ] as const;

  it('makes the same recording as from the plain spool, leaves out a tampered block and counts it, and needs the key', async () => {
    const ring = Keyring.open({ master_key_file: join(dir, 'sealed-master.key') });
    const plain = await run({ durationMs: 3000, legs });
    const spool = newSpoolKey(ring, 'SEALED');
    const key = Buffer.from(spool.key);
    const fx = await writeSpoolFixture({ durationMs: 3000, legs, path: join(dir, 'sealed.spool'), key: spool });
    // One bit of the ciphertext of the block before last: the packets it held are left out.
    const file = readFileSync(fx.path);
    let at = SPOOL_MAGIC_SEALED.length;
    at += 4 + file.readUInt32LE(at) + SPOOL_TAG_BYTES;
    const blocks: number[] = [];
    for (; at < file.length; at += RECORD_HEADER_BYTES + file.readUInt32LE(at + 4)) blocks.push(at);
    expect(blocks.length).toBeGreaterThan(3);
    const before = await rtpPerLeg(fx.path, key);
    file[blocks.at(-2)! + RECORD_HEADER_BYTES + 4]! ^= 0x10;
    writeFileSync(fx.path, file);
    const after = await rtpPerLeg(fx.path, key);
    expect(after.reduce((a, b) => a + b, 0)).toBeLessThan(before.reduce((a, b) => a + b, 0));

    const job = { spoolPath: fx.path, staging: stagingIn(dir), complexity: 5, bitrate: 32000, skipSilence: false, maskDtmf: false };
    await expect(encodeSpool({ ...job, id: 'SEALEDNOKEY' })).rejects.toMatchObject({ code: 'TALLENNE_SPOOL_KEY' });
    const sealed = await encodeSpool({ ...job, id: 'SEALED', spoolKey: key });
    expect(sealed.spoolRecordsRejected).toBe(1);
    expect(plain.result.spoolRecordsRejected).toBe(0);
    expect(sealed.status).toBe(plain.result.status);
    expect(sealed.durationMs).toBe(plain.result.durationMs);
    expect(plain.result.legs.map((l) => l.packets)).toEqual(before);
    expect(sealed.legs.map((l) => l.packets)).toEqual(after);
    const { left, right } = decodeStereo(stagedFile(sealed));
    expect(toneLevel(left, 440, 8000, ms(500), ms(2500))).toBeGreaterThan(TONE_MIN);
    expect(toneLevel(right, 1000, 8000, ms(500), ms(2500))).toBeGreaterThan(TONE_MIN);
  });
});
