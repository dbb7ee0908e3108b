import { describe, it, expect, afterEach } from 'vitest';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PortPair } from '../../../src/rtp/ports.js';
import { RtpLegReceiver } from '../../../src/rtp/receiver.js';
import { newRtpCounters } from '../../../src/rtp/counters.js';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { encodeSpool } from '../../../src/encoder/encode-spool.js';
import { fixtureMeta, PT } from '../../support/spool-fixture.js';
import { rtpPacket } from '../rtp/fixtures.js';
import { estimateQuality, roundMos } from '../../../src/quality/emodel.js';
import { stagingIn } from '../../support/store.js';

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

/** A port pair whose sockets are plain emitters: the test hands the receiver its datagrams. */
function fakePair(): { pair: PortPair; deliver: (msg: Buffer) => void } {
  const rtp = new EventEmitter();
  const rtcp = new EventEmitter();
  const pair = { port: 40000, rtp, rtcp } as unknown as PortPair;
  const rinfo = { address: '127.0.0.1', family: 'IPv4', port: 50000, size: 0 };
  return { pair, deliver: (msg) => rtp.emit('message', msg, { ...rinfo, size: msg.length }) };
}

describe('leg statistics: capture and the stored recording count alike', () => {
  it('the stored leg figures are the receiver’s, for loss, reordering, duplicates, an SSRC change, events and jitter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tallenne-leg-stats-'));
    dirs.push(dir);
    const answeredAt = Date.UTC(2026, 10, 22, 9, 0, 0);
    const meta = fixtureMeta({ legs: [{ index: 0, channel: 0, codec: 'PCMU' }] }, answeredAt);
    const spool = new SpoolWriter(join(dir, 'call.spool'));
    spool.appendMeta(answeredAt, meta);
    const { pair, deliver } = fakePair();
    let clock = answeredAt;
    const receiver = new RtpLegReceiver({
      legIndex: 0, pair, spool, formats: meta.legs[0]!.formats, counters: newRtpCounters(), now: () => clock, rtcpIntervalMs: 0, ssrc: 7,
    });

    // Source 1: 200 packets, five lost, two swapped, three duplicated, arrivals jittered.
    const jitter = (i: number) => ((i * 7919) % 13) - 6;
    const order: number[] = [];
    for (let i = 0; i < 200; i++) if (![20, 21, 22, 90, 150].includes(i)) order.push(i);
    [order[40], order[41]] = [order[41]!, order[40]!];
    order.splice(60, 0, order[59]!);
    order.splice(100, 0, order[98]!);
    order.splice(130, 0, order[130]!);
    for (const i of order) {
      clock = answeredAt + 20 + 20 * i + jitter(i);
      deliver(rtpPacket({ seq: 1000 + i, ts: 160 * i, ssrc: 1 }));
    }
    // An RFC 4733 event on the same source: its repeated start timestamp is not used for jitter.
    for (let k = 0; k < 5; k++) {
      clock = answeredAt + 4020 + 20 * k;
      deliver(rtpPacket({ pt: PT.EVENT, seq: 1200 + k, ts: 160 * 200, ssrc: 1, payload: Buffer.from([5, k === 4 ? 0x80 : 0, 0, 160 * (k + 1)]) }));
    }
    // Source 2: a new SSRC with its own sequence, 100 packets, one lost.
    for (let i = 0; i < 100; i++) {
      if (i === 33) continue;
      clock = answeredAt + 5000 + 20 * i + jitter(i + 3);
      deliver(rtpPacket({ seq: 60000 + i, ts: 99_000 + 160 * i, ssrc: 2 }));
    }
    receiver.close();
    await spool.close({ endedAt: answeredAt + 8000, reason: 'bye' });

    const live = receiver.reception;
    expect(live.packets).toBe(195 + 5 + 99);
    expect(live.lost).toBe(5 + 1);
    expect(live.ssrcs).toBe(2);
    expect(live.meanJitterMs).toBeGreaterThan(0.5);

    const result = await encodeSpool({ spoolPath: spool.path, staging: stagingIn(dir), id: '01JTESTLEGSTATS00000000000', complexity: 5, bitrate: 32000, skipSilence: false, maskDtmf: false });
    expect(result.legs[0]).toEqual({
      index: 0, role: 'customer', codec: 'PCMU',
      packets: live.packets, lost: live.lost, ssrcs: live.ssrcs, jitterMs: Math.round(live.meanJitterMs * 100) / 100,
      // The MOS is rated from the same figures (20 ms packets).
      mos: roundMos(estimateQuality({ codec: 'PCMU', packets: live.packets, lost: live.lost, jitterMs: live.meanJitterMs, packetMs: 20 })!.mos),
    });
    expect(result.dtmf.map((d) => d.digit)).toEqual(['5']);
  });
});
