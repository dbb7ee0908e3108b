import { describe, it, expect, afterEach, beforeAll, afterAll } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { PortAllocator, type PortPair } from '../../../src/rtp/ports.js';
import { openBatchReceive, type BatchReceiver } from '../../../src/rtp/batch-receive.js';
import { RtpLegReceiver, type LegSrtpKeys, type RtpLegReceiverOptions } from '../../../src/rtp/receiver.js';
import { SrtpSession, type SrtpPolicy } from '../../../src/rtp/srtp.js';
import { randomBytes } from 'node:crypto';
import { newRtpCounters } from '../../../src/rtp/counters.js';
import { parseRtcp, ntpMiddle32, type RtcpPacket } from '../../../src/rtp/rtcp.js';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { readSpool } from '../../../src/spool/reader.js';
import { RecordType } from '../../../src/spool/format.js';
import type { MediaFormat } from '../../../src/types.js';
import { newRtpHeader, readRtpHeader } from '../../../src/rtp/packet.js';
import { rtpPacket, senderReport } from './fixtures.js';
import { tempDir } from '../../support/cleanup.js';

const run = promisify(execFile);

const PCMU: MediaFormat = { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 };
const EVENTS: MediaFormat = { pt: 101, codec: 'TELEPHONE-EVENT', clockRate: 8000, channels: 1 };
const SSRC = 0x5eed0001;

const randomBase = (): number => 40000 + 2 * Math.floor(Math.random() * 9000);

const cleanups: Array<() => void | Promise<void>> = [];
/** The batched receive of the describe block running ("batched"), or none ("node"). */
let batch: BatchReceiver | undefined;
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Waits for a condition the event loop will make true; fails the test if it never does. */
async function until(what: string, cond: () => boolean, limitMs = 5000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function nextMessage(socket: dgram.Socket): Promise<{ msg: Buffer; rinfo: dgram.RemoteInfo }> {
  return new Promise((resolve) => socket.once('message', (msg, rinfo) => resolve({ msg, rinfo })));
}

/** Waits for the next datagram that parses as an RTCP RR on `socket`. */
async function nextReport(socket: dgram.Socket): Promise<{ packets: RtcpPacket[]; rinfo: dgram.RemoteInfo }> {
  for (;;) {
    const { msg, rinfo } = await nextMessage(socket);
    const packets = parseRtcp(msg);
    if (packets && packets[0]?.type === 'rr') return { packets, rinfo };
  }
}

function send(socket: dgram.Socket, buf: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(buf, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

async function setup(opts: { intervalMs?: number; now?: () => number; srtp?: LegSrtpKeys; source?: (peerPort: number) => RtpLegReceiverOptions['source'] } = {}) {
  const dir = tempDir('rtp');
  const base = randomBase();
  // Ours is read the way the describe block says; the peer's sockets always by Node.
  const ours = new PortAllocator({ address: '127.0.0.1', min: base, max: base + 9, ...(batch ? { batch } : {}) });
  const theirs = new PortAllocator({ address: '127.0.0.1', min: base + 10, max: base + 19 });
  const pair = await ours.allocatePair();
  const peer: PortPair = await theirs.allocatePair();
  const spool = new SpoolWriter(join(dir, 'call.spool'));
  const counters = newRtpCounters();
  let clock = 1_700_000_000_000;
  const receiver = new RtpLegReceiver({
    legIndex: 1, pair, spool, formats: [PCMU, EVENTS], counters,
    now: opts.now ?? (() => (clock += 20)), rtcpIntervalMs: opts.intervalMs ?? 30, ssrc: 0x0dd0dd0d, cname: 'tallenne@test',
    ...(opts.srtp ? { srtp: opts.srtp } : {}),
    ...(opts.source ? { source: opts.source(peer.port) } : {}),
  });
  cleanups.push(async () => {
    ours.release(receiver.close());
    theirs.release(peer);
    await spool.close(null);
    rmSync(dir, { recursive: true, force: true });
  });
  return { receiver, pair, peer, spool, counters };
}

async function spooled(spool: SpoolWriter): Promise<Array<{ type: RecordType; leg: number; time: number; payload: Buffer }>> {
  await spool.drain();
  const out: Array<{ type: RecordType; leg: number; time: number; payload: Buffer }> = [];
  await readSpool(spool.path, (r) => {
    out.push({ type: r.type, leg: r.leg, time: r.time, payload: Buffer.from(r.payload) });
  });
  return out;
}

describe.each(['node', 'batched'] as const)('RtpLegReceiver on loopback, %s receive', (mode) => {
  beforeAll(() => {
    batch = mode === 'batched' ? (openBatchReceive('batched') ?? undefined) : undefined;
  });
  afterAll(() => {
    batch?.close();
    batch = undefined;
  });

  it('spools accepted RTP and RTCP, drops and counts junk and paused packets', async () => {
    const { receiver, pair, peer, spool, counters } = await setup({ intervalMs: 60_000 });
    const sent: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const p = rtpPacket({ seq: 1000 + i, ts: i * 160, ssrc: SSRC, payload: Buffer.alloc(160, i) });
      sent.push(p);
      await send(peer.rtp, p, pair.port);
    }
    await until('10 packets', () => counters.packets === 10);
    expect(receiver.lastPacketAt).not.toBeNull();

    await send(peer.rtp, rtpPacket({ pt: 8, seq: 1010, ts: 1600, ssrc: SSRC }), pair.port); // PCMA: not offered
    await send(peer.rtp, Buffer.from('definitely not rtp'), pair.port);
    await send(peer.rtp, Buffer.alloc(6, 0x80), pair.port);
    const v1 = rtpPacket({ seq: 1011, ts: 1, ssrc: SSRC });
    v1[0] = 0x40;
    await send(peer.rtp, v1, pair.port);
    const lying = rtpPacket({ seq: 1012, ts: 1, ssrc: SSRC, payload: Buffer.alloc(4) });
    lying[0] = 0x8f; // 15 CSRCs that are not there
    await send(peer.rtp, lying, pair.port);
    await until('junk counted', () => counters.dropped.unknown_payload_type === 1 && counters.dropped.too_short === 1
      && counters.dropped.bad_version === 2 && counters.dropped.bad_header === 1);

    receiver.setPaused(true);
    for (let i = 10; i < 13; i++) await send(peer.rtp, rtpPacket({ seq: 1000 + i, ts: i * 160, ssrc: SSRC }), pair.port);
    await until('paused drops', () => counters.dropped.paused === 3);
    const pausedAt = receiver.lastPacketAt;
    expect(receiver.lastHeardAt).toBeGreaterThan(pausedAt!);
    receiver.setPaused(false);

    for (let i = 13; i < 18; i++) {
      const p = rtpPacket({ seq: 1000 + i, ts: i * 160, ssrc: SSRC, payload: Buffer.alloc(160, i) });
      sent.push(p);
      await send(peer.rtp, p, pair.port);
    }
    // RFC 4733 event on the offered event payload type: spooled like audio.
    const dtmf = rtpPacket({ pt: 101, seq: 1018, ts: 17 * 160, ssrc: SSRC, payload: Buffer.from([5, 0x0a, 0, 160]) });
    sent.push(dtmf);
    await send(peer.rtp, dtmf, pair.port);

    const sr = senderReport(SSRC, 0xe1234567, 0x89abcdef, 17 * 160, 18, 18 * 160);
    await send(peer.rtcp, sr, pair.port + 1);
    await send(peer.rtcp, Buffer.from([0x80, 200, 0, 40, 1, 2, 3, 4]), pair.port + 1); // length lies
    await send(peer.rtp, Buffer.from([0x81, 201, 0, 40]), pair.port); // muxed, truncated
    await until('rtcp handled', () => counters.rtcp === 1 && counters.dropped.rtcp_malformed === 2 && counters.packets === 16);

    // The statistics count the packets dropped while paused too: they were received.
    expect(receiver.reception).toMatchObject({ packets: 19, lost: 0, ssrcs: 1 });
    expect(receiver.reception.current!.ssrc).toBe(SSRC);
    expect(counters.bytes).toBe(sent.reduce((n, p) => n + p.length, 0));
    expect(receiver.reception.source(SSRC)!.lastSenderReport).toMatchObject({ ntpSeconds: 0xe1234567, ntpFraction: 0x89abcdef, rtpTimestamp: 17 * 160 });

    const records = await spooled(spool);
    const rtp = records.filter((r) => r.type === RecordType.Rtp);
    const rtcp = records.filter((r) => r.type === RecordType.Rtcp);
    expect(records.length).toBe(rtp.length + rtcp.length);
    expect(rtp.map((r) => r.payload)).toEqual(sent);
    expect(rtcp.map((r) => r.payload)).toEqual([sr]);
    expect(records.every((r) => r.leg === 1)).toBe(true);
    for (let i = 1; i < records.length; i++) expect(records[i]!.time).toBeGreaterThan(records[i - 1]!.time);
  });

  it('sends receiver reports to the source RTP port + 1, then to where RTCP came from', async () => {
    const { pair, peer, counters } = await setup({ intervalMs: 30 });
    // Reports start with the first RTP packet, not before.
    expect(counters.rtcpSent).toBe(0);
    const firstReport = nextReport(peer.rtcp);
    for (let i = 0; i < 20; i++) {
      if (i === 7 || i === 8) continue; // two lost
      await send(peer.rtp, rtpPacket({ seq: 65530 + i, ts: i * 160, ssrc: SSRC }), pair.port);
    }
    const { packets, rinfo } = await firstReport;
    expect(rinfo.port).toBe(pair.port + 1); // sent from our RTCP socket
    const rr = packets[0]!;
    expect(rr.type).toBe('rr');
    if (rr.type !== 'rr') return;
    expect(rr.ssrc).toBe(0x0dd0dd0d);
    expect(packets[1]).toEqual({ type: 'sdes', ssrcs: [0x0dd0dd0d] });
    // A block appears once the source passed probation; it is about the sender's SSRC.
    expect(rr.reports.every((b) => b.ssrc === SSRC)).toBe(true);

    // Wait until every packet is in, then the next report must show the full picture.
    await until('18 packets', () => counters.packets === 18);
    await send(peer.rtp, rtpPacket({ seq: 65530 + 20, ts: 20 * 160, ssrc: SSRC }), pair.port);
    const sr = senderReport(SSRC, 0x00011234, 0x56780000, 3200, 19, 3040);
    await send(peer.rtcp, sr, pair.port + 1);
    await until('sr seen', () => counters.rtcp === 1);
    // Listen before the last packet goes: a report carries a block only for a source heard
    // since the report before, so the one report that counts that packet must not be missed.
    const highestSeq = 65536 + (65530 + 21 - 65536);
    const withLast = (async () => {
      for (;;) {
        const { packets: p2 } = await nextReport(peer.rtcp);
        const rr2 = p2[0]!;
        if (rr2.type === 'rr' && rr2.reports.length > 0 && rr2.reports[0]!.highestSeq === highestSeq) return rr2.reports[0];
      }
    })();
    await send(peer.rtp, rtpPacket({ seq: 65530 + 21, ts: 21 * 160, ssrc: SSRC }), pair.port);
    await until('20 packets', () => counters.packets === 20);
    expect(await withLast).toMatchObject({
      ssrc: SSRC,
      cumulativeLost: 2,
      highestSeq,
      lsr: ntpMiddle32(0x00011234, 0x56780000),
    });
    expect(counters.rtcpSent).toBeGreaterThan(0);
    expect(counters.lost).toBe(2);
  });

  it('answers muxed RTCP on the RTP socket, to the address it came from', async () => {
    const { pair, peer, counters } = await setup({ intervalMs: 30 });
    for (let i = 0; i < 5; i++) await send(peer.rtp, rtpPacket({ seq: i, ts: i * 160, ssrc: SSRC }), pair.port);
    await send(peer.rtp, senderReport(SSRC, 1, 2, 3, 4, 5), pair.port); // RFC 5761: RTCP on the RTP port
    await until('muxed rtcp', () => counters.rtcp === 1);
    // Reports sent before the muxed SR went to port + 1; from now on they come to the RTP
    // socket, sent from ours.
    const { rinfo } = await nextReport(peer.rtp);
    expect(rinfo.port).toBe(pair.port);
  });

  it('tracks an SSRC change as a new source and reports loss per source', async () => {
    const { receiver, pair, peer, counters } = await setup({ intervalMs: 60_000 });
    for (let i = 0; i < 10; i++) await send(peer.rtp, rtpPacket({ seq: 100 + i, ts: i * 160, ssrc: 1 }), pair.port);
    for (let i = 0; i < 10; i++) {
      if (i === 4) continue;
      await send(peer.rtp, rtpPacket({ seq: 5000 + i, ts: 99999 + i * 160, ssrc: 2 }), pair.port);
    }
    await until('19 packets', () => counters.packets === 19);
    expect(receiver.reception).toMatchObject({ packets: 19, lost: 1, ssrcs: 2 });
    expect(receiver.reception.current!.ssrc).toBe(2);
    expect(counters.ssrcChanges).toBe(1);
    expect(receiver.reception.source(1)!.received).toBe(10);
    expect(receiver.reception.source(2)!.lost).toBe(1);
  });

  it('follows new formats after a re-INVITE and stops listening on close', async () => {
    const { receiver, pair, peer, counters, spool } = await setup({ intervalMs: 60_000 });
    await send(peer.rtp, rtpPacket({ pt: 8, seq: 1, ts: 0, ssrc: SSRC }), pair.port);
    await until('pcma dropped', () => counters.dropped.unknown_payload_type === 1);
    receiver.setFormats([{ pt: 8, codec: 'PCMA', clockRate: 8000, channels: 1 }]);
    await send(peer.rtp, rtpPacket({ pt: 8, seq: 2, ts: 160, ssrc: SSRC }), pair.port);
    await send(peer.rtp, rtpPacket({ pt: 0, seq: 3, ts: 320, ssrc: SSRC }), pair.port);
    await until('pcma accepted', () => counters.packets === 1 && counters.dropped.unknown_payload_type === 2);
    expect(counters.activeLegs.has(receiver)).toBe(true);

    const returned = receiver.close();
    expect(returned).toBe(pair);
    expect(counters.activeLegs.has(receiver)).toBe(false);
    expect(counters.jitterObservations.pending).toBe(1);
    // The socket is still open (the caller releases it) but nobody listens for RTP any more.
    const stillOpen = nextMessage(pair.rtp);
    await send(peer.rtp, rtpPacket({ pt: 8, seq: 4, ts: 480, ssrc: SSRC }), pair.port);
    await stillOpen;
    expect(counters.packets).toBe(1);
    expect((await spooled(spool)).length).toBe(1);
  });

  it('records a real RTP sender (ffmpeg) faithfully: every packet, its SR, audio intact', async () => {
    const { receiver, pair, spool, counters } = await setup({ intervalMs: 60_000, now: () => Date.now() });
    // ffmpeg's RTP muxer: 1 s of 440 Hz as PCMU, 160 samples (20 ms) per packet, an RTCP SR
    // to port + 1 with the first packet.
    await run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-f', 'lavfi',
      '-i', 'sine=frequency=440:duration=1:sample_rate=8000:samples_per_frame=160',
      '-c:a', 'pcm_mulaw', '-payload_type', '0', '-pkt_size', '172', '-f', 'rtp', '-sdp_file', '/dev/null',
      `rtp://127.0.0.1:${pair.port}?rtcpport=${pair.port + 1}`,
    ]);
    await until('50 packets and an SR', () => counters.packets === 50 && counters.rtcp >= 1);
    expect(counters.dropped.rtcp_malformed).toBe(0);
    expect(receiver.reception).toMatchObject({ packets: 50, lost: 0, ssrcs: 1 });
    const ssrc = receiver.reception.current!.ssrc;

    const records = await spooled(spool);
    const h = newRtpHeader();
    const audio: Buffer[] = [];
    let prevSeq = -1;
    for (const r of records.filter((x) => x.type === RecordType.Rtp)) {
      expect(readRtpHeader(r.payload, r.payload.length, h)).toBeNull();
      expect(h.ssrc).toBe(ssrc);
      if (prevSeq >= 0) expect(h.sequence).toBe((prevSeq + 1) & 0xffff);
      prevSeq = h.sequence;
      audio.push(r.payload.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength));
    }
    expect(audio.length).toBe(50);
    const sr = records.filter((x) => x.type === RecordType.Rtcp).map((x) => parseRtcp(x.payload)![0]!);
    expect(sr[0]).toMatchObject({ type: 'sr', ssrc: ssrc });

    // The spooled payloads, concatenated, are the tone ffmpeg sent: sox measures it.
    const dir = tempDir('rtp-audio');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const raw = join(dir, 'leg.ul');
    writeFileSync(raw, Buffer.concat(audio));
    const { stderr } = await run('sox', ['-t', 'ul', '-r', '8000', '-c', '1', raw, '-n', 'stat']);
    const seconds = Number(/Length \(seconds\):\s+([\d.]+)/.exec(stderr)![1]);
    const freq = Number(/Rough\s+frequency:\s+(\d+)/.exec(stderr)![1]);
    expect(seconds).toBeCloseTo(1, 3);
    expect(Math.abs(freq - 440)).toBeLessThan(10);
  });

  it('SRTP: authenticates and decrypts before parsing, spools the plain packet, counts failures by reason, reports in SRTCP', async () => {
    const theirs: SrtpPolicy = { suite: 'AES_CM_128_HMAC_SHA1_80', keys: [{ key: randomBytes(16), salt: randomBytes(14), mki: Buffer.from([0, 7]) }], mkiLength: 2 };
    const ours: SrtpPolicy = { suite: 'AEAD_AES_128_GCM', keys: [{ key: randomBytes(16), salt: randomBytes(12) }] };
    const { pair, peer, spool, counters } = await setup({ intervalMs: 30, srtp: { receive: theirs, send: ours } });
    const sender = new SrtpSession(theirs);
    const plain: Buffer[] = [];
    let last: Buffer | null = null;
    for (let i = 0; i < 5; i++) {
      // Padding is encrypted under SRTP: the parser must see it only after decryption.
      const p = rtpPacket({ seq: 500 + i, ts: i * 160, ssrc: SSRC, payload: Buffer.alloc(160, 0x55 + i), padding: i === 4 ? 4 : 0 });
      plain.push(p);
      last = sender.protectRtp(p);
      await send(peer.rtp, last, pair.port);
    }
    await until('5 SRTP packets', () => counters.packets === 5);
    const flipped = sender.protectRtp(rtpPacket({ seq: 505, ts: 800, ssrc: SSRC }));
    flipped[30]! ^= 0x10;
    await send(peer.rtp, flipped, pair.port);
    await send(peer.rtp, last!, pair.port);
    // Plain RTP on an SRTP leg: its last payload octets stand where the MKI should be.
    await send(peer.rtp, rtpPacket({ seq: 506, ts: 960, ssrc: SSRC }), pair.port);
    const wrongMki = sender.protectRtp(rtpPacket({ seq: 507, ts: 1120, ssrc: SSRC }));
    wrongMki[wrongMki.length - 11]! ^= 0xff;
    await send(peer.rtp, wrongMki, pair.port);
    await send(peer.rtcp, sender.protectRtcp(senderReport(SSRC, 1, 2, 800, 5, 800)), pair.port + 1);
    await until('drops and SRTCP', () => counters.dropped.srtp_auth_failed === 1 && counters.dropped.srtp_replayed === 1
      && counters.dropped.srtp_bad_mki === 2 && counters.rtcp === 1);
    expect(counters.packets).toBe(5);

    // Our report went out as SRTCP under our key: it opens with our policy, not in the clear.
    const { msg } = await nextMessage(peer.rtcp);
    expect(parseRtcp(msg)?.[0]?.type).not.toBe('rr');
    const opened = new SrtpSession(ours).unprotectRtcp(Buffer.from(msg));
    expect(opened.ok).toBe(true);
    expect(parseRtcp(opened.ok ? opened.packet : Buffer.alloc(0))?.[0]?.type).toBe('rr');

    const records = await spooled(spool);
    expect(records.filter((r) => r.type === RecordType.Rtp).map((r) => r.payload)).toEqual(plain);
    const sr = records.find((r) => r.type === RecordType.Rtcp)!;
    expect(parseRtcp(sr.payload)?.[0]?.type).toBe('sr');
  });

  it('a re-key replaces the SRTP context: the old key no longer opens, the new one does', async () => {
    const a: SrtpPolicy = { suite: 'AEAD_AES_256_GCM', keys: [{ key: randomBytes(32), salt: randomBytes(12) }] };
    const b: SrtpPolicy = { suite: 'AES_CM_128_HMAC_SHA1_32', keys: [{ key: randomBytes(16), salt: randomBytes(14) }] };
    const { receiver, pair, peer, counters } = await setup({ intervalMs: 60_000, srtp: { receive: a, send: a } });
    await send(peer.rtp, new SrtpSession(a).protectRtp(rtpPacket({ seq: 1, ts: 0, ssrc: SSRC })), pair.port);
    await until('one packet', () => counters.packets === 1);
    receiver.setSrtp({ receive: b, send: b });
    await send(peer.rtp, new SrtpSession(a).protectRtp(rtpPacket({ seq: 2, ts: 160, ssrc: SSRC })), pair.port);
    await send(peer.rtp, new SrtpSession(b).protectRtp(rtpPacket({ seq: 3, ts: 320, ssrc: SSRC })), pair.port);
    await until('old key refused, new accepted', () => counters.dropped.srtp_auth_failed === 1 && counters.packets === 2);
  });

  it.runIf(mode === 'batched')('batched: a datagram longer than a receive slot is dropped as too_long, and the leg goes on', async () => {
    const { pair, peer, counters } = await setup({ intervalMs: 60_000 });
    await send(peer.rtp, rtpPacket({ seq: 1, ts: 0, ssrc: SSRC, payload: Buffer.alloc(5000, 1) }), pair.port);
    await send(peer.rtp, rtpPacket({ seq: 2, ts: 160, ssrc: SSRC }), pair.port);
    await until('one dropped, one spooled', () => counters.dropped.too_long === 1 && counters.packets === 1);
  });

  it('strict: takes only the offered port, counts the rest as wrong_source', async () => {
    const { pair, peer, counters } = await setup({ intervalMs: 60_000, source: (port) => ({ mode: 'strict', offered: { address: '127.0.0.1', rtpPort: port, rtcpPort: port + 1 } }) });
    await send(peer.rtp, rtpPacket({ seq: 1, ts: 0, ssrc: SSRC }), pair.port);
    await send(peer.rtcp, rtpPacket({ seq: 2, ts: 160, ssrc: SSRC }), pair.port); // from the RTCP port to the RTP port
    await send(peer.rtcp, senderReport(SSRC, 1, 2, 0, 1, 160), pair.port + 1);
    await until('one of each', () => counters.packets === 1 && counters.dropped.wrong_source === 1 && counters.rtcp === 1);
  });
});
