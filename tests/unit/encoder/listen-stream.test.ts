/**
 * ListenStream: a call's spool followed into an Ogg Opus stream through the encoder's own
 * stages, from a point in the call on, with the spool still growing or already ended.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListenStream } from '../../../src/encoder/listen-stream.js';
import { tempDir } from '../../support/cleanup.js';
import { writeSpoolFixture } from '../../support/spool-fixture.js';
import { decodeWithFfmpeg, tonePower } from '../../support/audio.js';

const T0 = Date.UTC(2026, 10, 24, 9, 0, 0);

describe('ListenStream', () => {
  it('streams both channels from fromMs on, and ends with the spool', async () => {
    const dir = tempDir('listen-stream');
    const spool = join(dir, 'call.spool');
    await writeSpoolFixture({
      path: spool,
      answeredAt: T0,
      durationMs: 6000,
      legs: [
        { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
        { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000, startMs: 3000 },
      ],
    });
    const pages: Buffer[] = [];
    const s = new ListenStream({ spoolPath: spool, fromMs: T0 + 2000, complexity: 5, bitrate: 32000, onPage: (p) => pages.push(Buffer.from(p)), callEnded: () => true, now: () => T0 });
    await s.run();
    const file = join(dir, 'out.opus');
    writeFileSync(file, Buffer.concat(pages));
    const pcm = decodeWithFfmpeg(file);
    const [left, right] = pcm.channels;
    // 4 s from fromMs to the end.
    expect(left!.length).toBeGreaterThan(8000 * 3.8);
    expect(left!.length).toBeLessThan(8000 * 4.2);
    expect(tonePower(left!, 8000, 440, 800, 8000 * 3.5)).toBeGreaterThan(0.5);
    // The agent starts 1 s into the stream.
    expect(tonePower(right!, 8000, 1000, 8000 * 1.5, 8000 * 3.5)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 0, 8000 * 0.8)).toBeLessThan(0.1);
    expect(s.frameCount).toBeGreaterThan(190);
  });
});

describe('ListenStream on a growing spool', () => {
  it('keeps up with a spool written in real time', async () => {
    const { SpoolWriter } = await import('../../../src/spool/writer.js');
    const { RecordType } = await import('../../../src/spool/format.js');
    const { fixtureMeta, linearToUlaw } = await import('../../support/spool-fixture.js');
    const { rtpPacket } = await import('../rtp/fixtures.js');
    const dir = tempDir('listen-live');
    const path = join(dir, 'call.spool');
    const w = new SpoolWriter(path);
    const start = Date.now();
    w.appendMeta(start, fixtureMeta({ legs: [{ index: 0, channel: 0, codec: 'PCMU' }, { index: 1, channel: 1, codec: 'PCMU' }] }, start));
    const pages: Buffer[] = [];
    let ended = false;
    const s = new ListenStream({ spoolPath: path, fromMs: start, complexity: 5, bitrate: 32000, onPage: (p) => pages.push(Buffer.from(p)), callEnded: () => ended });
    const running = s.run();
    const tone = (hz: number, k: number): Buffer => {
      const b = Buffer.alloc(160);
      for (let i = 0; i < 160; i++) b[i] = linearToUlaw(Math.round(8000 * Math.sin((2 * Math.PI * hz * (k * 160 + i)) / 8000)));
      return b;
    };
    for (let k = 0; k < 150; k++) {
      await new Promise((r) => setTimeout(r, Math.max(0, start + 20 * k - Date.now())));
      w.appendPacket(RecordType.Rtp, 0, Date.now(), rtpPacket({ seq: k, ts: 160 * k, ssrc: 1, payload: tone(440, k) }));
      if (k >= 75) w.appendPacket(RecordType.Rtp, 1, Date.now(), rtpPacket({ seq: k, ts: 160 * k, ssrc: 2, payload: tone(1000, k) }));
      if (k % 10 === 0) w.flush();
    }
    await w.close({ endedAt: Date.now(), reason: 'bye' });
    ended = true;
    await running;
    const file = join(dir, 'out.opus');
    writeFileSync(file, Buffer.concat(pages));
    const [left, right] = decodeWithFfmpeg(file).channels;
    expect(left!.length).toBeGreaterThan(8000 * 2.8);
    expect(tonePower(left!, 8000, 440, 8000 * 2, 8000 * 2.8)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 8000 * 2, 8000 * 2.8)).toBeGreaterThan(0.5);
  });
});
