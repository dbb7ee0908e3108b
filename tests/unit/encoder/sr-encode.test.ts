/**
 * Sender reports in the spool move a leg whose first packets arrived late back into line
 * with the other leg, end to end through encodeSpool (decoded with ffmpeg).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { RecordType } from '../../../src/spool/format.js';
import { encodeSpool } from '../../../src/encoder/encode-spool.js';
import { linearToUlaw } from '../../../src/encoder/g711.js';
import type { MediaFormat, RecordingMeta } from '../../../src/types.js';
import { senderReport } from '../rtp/fixtures.js';
import { decodeWithFfmpeg } from '../../support/audio.js';
import { tempDir } from '../../support/cleanup.js';
import { stagedFile, stagingIn } from '../../support/store.js';

const PCMU: MediaFormat = { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 };
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/** Both legs start sending at the same sender time; the agent leg's packets all arrive 120 ms later. */
async function spoolWithDelayedLeg(withSr: boolean): Promise<{ dir: string; path: string }> {
  const dir = tempDir('sr');
  const path = join(dir, 'call.spool');
  const answeredAt = Date.UTC(2026, 10, 22, 9, 0, 0);
  const meta: RecordingMeta = {
    id: 'sr-test', callId: 'sr@test', siprec: true, answeredAt, direction: 'inbound', participants: [],
    legs: [
      { index: 0, role: 'customer', channel: 0, formats: [PCMU] },
      { index: 1, role: 'agent', channel: 1, formats: [PCMU] },
    ],
  };
  const w = new SpoolWriter(path);
  w.appendMeta(answeredAt, meta);
  const sendStart = answeredAt + 500;
  const legs = [
    { ssrc: 0x1111, tsBase: 1_000, seqBase: 10, delay: 10 },
    { ssrc: 0x2222, tsBase: 7_000_000, seqBase: 5000, delay: 130 },
  ];
  const packets: Array<{ at: number; leg: number; buf: Buffer }> = [];
  for (const [legIdx, l] of legs.entries()) {
    for (let n = 0; n < 150; n++) {
      const sentAt = sendStart + n * 20;
      const buf = Buffer.alloc(172);
      buf[0] = 0x80;
      buf[1] = 0;
      buf.writeUInt16BE((l.seqBase + n) & 0xffff, 2);
      buf.writeUInt32BE((l.tsBase + n * 160) >>> 0, 4);
      buf.writeUInt32BE(l.ssrc, 8);
      // Silence for the first second, then a tone: the onset marks where the leg sits.
      for (let i = 0; i < 160; i++) {
        const t = n * 160 + i;
        buf[12 + i] = linearToUlaw(n >= 50 ? Math.round(12000 * Math.sin((2 * Math.PI * 1000 * t) / 8000)) : 0);
      }
      packets.push({ at: sentAt + l.delay, leg: legIdx, buf });
    }
    if (withSr) {
      // An SR one second in, on the same sender clock for both legs.
      const srAt = sendStart + 1000;
      const ms = srAt;
      const sec = Math.floor(ms / 1000) + NTP_UNIX_OFFSET_S;
      const frac = Math.round(((ms % 1000) / 1000) * 2 ** 32);
      packets.push({ at: srAt + l.delay + 1, leg: -1 - legIdx, buf: senderReport(l.ssrc, sec, frac, l.tsBase + 50 * 160, 50, 8000) });
    }
  }
  packets.sort((a, b) => a.at - b.at);
  for (const p of packets) {
    if (p.leg >= 0) w.appendPacket(RecordType.Rtp, p.leg, p.at, p.buf);
    else w.appendPacket(RecordType.Rtcp, -1 - p.leg, p.at, p.buf);
  }
  await w.close({ endedAt: answeredAt + 4000, reason: 'bye' });
  return { dir, path };
}

function onsetMs(x: Int16Array, rate: number): number {
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i]!) > 3000) return (i / rate) * 1000;
  return Number.NaN;
}

async function skew(withSr: boolean): Promise<number> {
  const { dir, path } = await spoolWithDelayedLeg(withSr);
  const r = await encodeSpool({ spoolPath: path, staging: stagingIn(dir), id: 'sr-test', complexity: 5, bitrate: 24000, skipSilence: true, maskDtmf: false });
  const pcm = decodeWithFfmpeg(stagedFile(r));
  return onsetMs(pcm.channels[1]!, pcm.rate) - onsetMs(pcm.channels[0]!, pcm.rate);
}

describe('sender-report alignment in the encoder', () => {
  it('without sender reports the late leg sits where its first packet arrived (120 ms late)', async () => {
    expect(await skew(false)).toBeGreaterThan(100);
  });

  it('with sender reports on one clock both legs line up', async () => {
    expect(Math.abs(await skew(true))).toBeLessThan(25);
  });
});
