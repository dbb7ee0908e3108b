/**
 * ListenStream: a call's spool followed into an Ogg Opus stream through the encoder's own
 * stages, from a point in the call on, with the spool still growing or already ended.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListenStream, type ListenJob } from '../../../src/encoder/listen-stream.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { newSpoolKey } from '../../../src/spool/cipher.js';
import { tempDir } from '../../support/cleanup.js';
import { writeSpoolFixture } from '../../support/spool-fixture.js';
import { decodeWithFfmpeg, tonePower } from '../../support/audio.js';

const T0 = Date.UTC(2026, 10, 24, 9, 0, 0);

const listenJob = (spoolPath: string, fromMs: number, more: Partial<ListenJob> = {}): ListenJob => ({ spoolPath, fromMs, complexity: 5, bitrate: 32000, maskDtmf: false, ...more });

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
    const s = new ListenStream(listenJob(spool, T0 + 2000), { onPage: (p) => pages.push(Buffer.from(p)), now: () => T0 });
    s.callEnded();
    const end = await s.run();
    expect(end).toMatchObject({ reason: 'call_ended', bytes: Buffer.concat(pages).length, thread: 0 });
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
    const s = new ListenStream(listenJob(path, start), { onPage: (p) => pages.push(Buffer.from(p)) });
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
    s.callEnded();
    expect((await running).reason).toBe('call_ended');
    const file = join(dir, 'out.opus');
    writeFileSync(file, Buffer.concat(pages));
    const [left, right] = decodeWithFfmpeg(file).channels;
    expect(left!.length).toBeGreaterThan(8000 * 2.8);
    expect(tonePower(left!, 8000, 440, 8000 * 2, 8000 * 2.8)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 8000 * 2, 8000 * 2.8)).toBeGreaterThan(0.5);
  });
});

describe('ListenStream flow control', () => {
  const legs = [
    { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
    { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
  ] as const;

  it('sends within its window while pages are acknowledged, and cuts a listener off that takes none (too_slow)', async () => {
    const dir = tempDir('listen-window');
    const spool = join(dir, 'call.spool');
    await writeSpoolFixture({ path: spool, answeredAt: T0, durationMs: 20_000, legs });
    const run = async (acked: boolean): Promise<{ end: Awaited<ReturnType<ListenStream['run']>>; held: number; most: number }> => {
      let held = 0;
      let most = 0;
      const s: ListenStream = new ListenStream(listenJob(spool, T0, { windowBytes: 4096 }), {
        onPage: (p) => {
          held += p.length;
          most = Math.max(most, held, s.unackedBytes);
          if (acked) {
            s.ack(p.length);
            held -= p.length;
          }
        },
        now: () => T0,
      });
      s.callEnded();
      return { end: await s.run(), held, most };
    };
    const taken = await run(true);
    expect(taken.end.reason).toBe('call_ended');
    expect(taken.end.bytes).toBeGreaterThan(4 * 4096);
    const stuck = await run(false);
    expect(stuck.end.reason).toBe('too_slow');
    // What waits for the listener never passes the window, and the stream stopped early.
    expect(stuck.most).toBeLessThanOrEqual(4096);
    expect(stuck.end.bytes).toBe(stuck.held);
    expect(stuck.end.frames).toBeLessThan(taken.end.frames);
  });

  /** A sealed spool of `durationMs` (without END when `ongoing`) and a copy of its key. */
  async function sealedSpool(name: string, durationMs: number, ongoing: boolean): Promise<{ dir: string; spool: string; key: Uint8Array }> {
    const dir = tempDir(name);
    const ring = Keyring.open({ master_key_file: join(dir, 'master.key') });
    const sealed = newSpoolKey(ring, name);
    const key = Uint8Array.from(sealed.key);
    const spool = join(dir, 'sealed.spool');
    await writeSpoolFixture({ path: spool, answeredAt: T0, durationMs, legs, end: !ongoing, key: sealed });
    return { dir, spool, key };
  }

  it('stops at once when the listener goes away, and overwrites its copy of a sealed spool key', async () => {
    // A call still going on: no END record, and the call has not ended.
    const { dir, spool, key } = await sealedSpool('listen-sealed', 4000, true);
    const pages: Buffer[] = [];
    const s = new ListenStream(listenJob(spool, T0, { spoolKey: key }), { onPage: (p) => pages.push(Buffer.from(p)), now: () => T0 + 4000 });
    const running = s.run();
    await new Promise<void>((r) => {
      const check = (): void => void (s.frameCount >= 150 ? r() : setTimeout(check, 20));
      check();
    });
    s.stop();
    const end = await running;
    expect(end.reason).toBe('listener_gone');
    expect(key.every((b) => b === 0)).toBe(true);
    const file = join(dir, 'out.opus');
    writeFileSync(file, Buffer.concat(pages));
    const [left, right] = decodeWithFfmpeg(file).channels;
    expect(tonePower(left!, 8000, 440, 800, 8000 * 2.5)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 800, 8000 * 2.5)).toBeGreaterThan(0.5);
  });

  it('ends as failed, with the error code and no key in the message, when the sealed spool comes without its key', async () => {
    const { spool, key } = await sealedSpool('listen-nokey', 1000, false);
    const hex = Buffer.from(key).toString('hex');
    const end = await new ListenStream(listenJob(spool, T0), { onPage: () => undefined, now: () => T0 }).run();
    expect(end).toMatchObject({ reason: 'failed', code: 'TALLENNE_SPOOL_KEY', bytes: 0 });
    expect(end.message).not.toContain(hex);
  });
});
