/**
 * The live encoder: a CallEncoder that follows a spool while it is being written, in chunks
 * that cut records anywhere, produces the same audio as the whole-spool encode of the
 * finished file; its memory does not grow with the call and it stays a bounded distance
 * behind the spool.
 */
import { describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CallEncoder } from '../../../src/encoder/call-encoder.js';
import { encodeSpool, type EncodeJob } from '../../../src/encoder/encode-spool.js';
import { LAG_MS } from '../../../src/encoder/timeline.js';
import { frameArena } from '../../../src/encoder/frame-arena.js';
import { SR_HOLD_MS } from '../../../src/encoder/spool-scan.js';
import { writeSpoolFixture, type FixtureSpec } from '../../support/spool-fixture.js';
import { decodeWithFfmpeg } from '../../support/audio.js';
import { tempDir } from '../../support/cleanup.js';
import { prng } from '../../support/fuzz.js';
import { stagedFile, stagingIn } from '../../support/store.js';


const job = (dir: string, spoolPath: string, id: string): EncodeJob => ({ spoolPath, staging: stagingIn(join(dir, id)), id, complexity: 5, bitrate: 24000, skipSilence: true, maskDtmf: false });

/**
 * Writes the fixture, then replays its bytes into a growing file in random chunks (a few
 * hundred ms of the call each), advancing a CallEncoder after each; returns both results.
 */
async function liveAndWhole(spec: Omit<FixtureSpec, 'path'>, seed: number) {
  const dir = tempDir('live-enc');
  const fixture = await writeSpoolFixture({ ...spec, path: join(dir, 'whole.spool') });
  const bytes = readFileSync(fixture.path);
  const growing = join(dir, 'growing.spool');
  writeFileSync(growing, bytes.subarray(0, 3));
  const live = new CallEncoder(job(dir, growing, 'live'));
  const rnd = prng(seed);
  const perMs = bytes.length / spec.durationMs;
  let maxBuffer = 0;
  let maxBehindMs = 0;
  for (let at = 3; at < bytes.length; ) {
    const next = Math.min(bytes.length, at + Math.ceil(perMs * (50 + rnd() * 400)));
    appendFileSync(growing, bytes.subarray(at, next));
    at = next;
    await live.advance();
    maxBuffer = Math.max(maxBuffer, live.bufferBytes);
    // How far the encoded audio is behind the spool's call time so far (the bytes stand for time).
    const spoolMs = (at / bytes.length) * spec.durationMs;
    if (spoolMs > SR_HOLD_MS + 500) maxBehindMs = Math.max(maxBehindMs, spoolMs - live.encodedMs);
  }
  const liveResult = await live.finish();
  const wholeResult = await encodeSpool(job(dir, fixture.path, 'whole'));
  return {
    live: liveResult,
    whole: wholeResult,
    livePcm: decodeWithFfmpeg(stagedFile(liveResult), liveResult.sampleRate),
    wholePcm: decodeWithFfmpeg(stagedFile(wholeResult), wholeResult.sampleRate),
    maxBuffer,
    maxBehindMs,
  };
}

function expectSameAudio(r: Awaited<ReturnType<typeof liveAndWhole>>): void {
  const { staged: _a, encodeCpuMs: _b, ...live } = r.live;
  const { staged: _c, encodeCpuMs: _d, ...whole } = r.whole;
  expect(live).toEqual(whole);
  for (const ch of [0, 1]) {
    const a = r.livePcm.channels[ch]!;
    const b = r.wholePcm.channels[ch]!;
    expect(a.length).toBe(b.length);
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
  }
}

describe('CallEncoder following a live spool', () => {
  it('gives the same audio and figures as the whole-spool encode: loss, reordering, DTMF, a pause, a gap, G.722 beside G.711', async () => {
    const r = await liveAndWhole(
      {
        durationMs: 12_000,
        pauses: [[6000, 7000]],
        legs: [
          {
            index: 0, channel: 0, codec: 'PCMU', toneHz: 440,
            lose: new Set([30, 31, 90]), delay: new Map([[100, 60], [200, 300]]), duplicate: new Set([50]),
            gaps: [[2500, 5000]], dtmf: [{ atMs: 8000, digit: '5', durationMs: 200 }],
          },
          { index: 1, channel: 1, codec: 'G722', toneHz: 1000, ssrcChangeAtMs: 9000 },
        ],
      },
      1,
    );
    expectSameAudio(r);
    expect(r.live.sampleRate).toBe(16000);
    expect(r.live.pauses).toEqual([{ startMs: 6000, endMs: 7000 }]);
    expect(r.live.dtmf.map((d) => d.digit)).toEqual(['5']);
    // Bounded: the timeline's rings and one read buffer, whatever the call's length.
    expect(r.maxBuffer).toBeLessThanOrEqual(2 * 2 * 16 * (LAG_MS + 1000) + 64 * 1024);
    // Followed a bounded distance behind: the lag, one chunk and one frame.
    expect(r.maxBehindMs).toBeLessThan(LAG_MS + 500 + 40);
  });

  it('gives the same truncated recording as the whole-spool encode when the spool has no END', async () => {
    const r = await liveAndWhole(
      { durationMs: 5000, end: false, legs: [{ index: 0, channel: 0, codec: 'PCMA', toneHz: 700 }, { index: 1, channel: 1, codec: 'PCMU', silent: true }] },
      2,
    );
    expectSameAudio(r);
    expect(r.live.status).toBe('truncated');
  });
});

describe('CallEncoder memory', () => {
  it('holds no more at the end of a long call than early on: its buffers are bounded by the lag, and every audio block goes back to the arena', async () => {
    const dir = tempDir('live-mem');
    const durationMs = 60_000;
    const fixture = await writeSpoolFixture({
      path: join(dir, 'whole.spool'),
      durationMs,
      legs: [{ index: 0, channel: 0, codec: 'PCMU', toneHz: 440 }, { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 }],
    });
    const bytes = readFileSync(fixture.path);
    const growing = join(dir, 'growing.spool');
    writeFileSync(growing, '');
    const arena = frameArena(160);
    const blocksBefore = arena.inUse;
    const live = new CallEncoder(job(dir, growing, 'live'));
    const steps = durationMs / 1000;
    const held: number[] = [];
    for (let k = 1; k <= steps; k++) {
      appendFileSync(growing, bytes.subarray(Math.floor(((k - 1) * bytes.length) / steps), Math.floor((k * bytes.length) / steps)));
      await live.advance();
      held.push(live.bufferBytes);
    }
    // Past the start scan's hold: two legs of LAG_MS of 8 kHz audio (and the frame being
    // written), the follower's buffer and the Ogg page of one second at 24 kbit/s.
    const bound = 2 * ((LAG_MS + 2 * 20) * 8 * 2) + 4096 + 16 * 1024;
    const steady = held.slice(Math.ceil((SR_HOLD_MS + LAG_MS) / 1000) + 1);
    expect(Math.max(...steady)).toBeLessThanOrEqual(bound);
    const third = Math.floor(steady.length / 3);
    expect(Math.max(...steady.slice(-third))).toBeLessThanOrEqual(Math.max(...steady.slice(0, third)));
    const r = await live.finish();
    expect(r.durationMs).toBe(durationMs);
    expect(arena.inUse).toBe(blocksBefore);
  });
});
