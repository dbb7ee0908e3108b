/**
 * SRTP end to end against the running daemon, and the RTP source rules:
 *
 * - a SIPREC offer built from a shared sample (Cisco CUBE, two audio m-lines) with its
 *   m-lines turned into RTP/SAVP and RFC 4568 / RFC 7714 crypto lines (an unsupported suite
 *   first, an MKI and a key lifetime; AEAD_AES_256_GCM with a window-size hint on the other
 *   leg), answered with RTP/SAVP and our own keys, recorded from SRTP senders; one leg is
 *   re-keyed mid-call by a re-INVITE. A packet with one flipped bit and a replayed packet
 *   are refused and counted; the recording carries both tones, before and after the re-key;
 *   no SDES key (offered or answered) is in any line the daemon printed;
 * - DTLS-SRTP and malformed crypto lines are refused cleanly (488 / 400);
 * - `srtp = "required"` refuses a plain offer with 488; `source = "strict"` drops packets from
 *   another port; `latch` drops a second source after it latched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { SampleDialog, sampleMessage } from '../support/sample-replay.js';
import { RtpSender } from '../support/rtp-sender.js';
import { sleep } from '../support/legs.js';
import { storedEntries } from '../support/index-reader.js';
import { decodeWithFfmpeg, tonePower } from '../support/audio.js';
import { offerSdp } from '../support/rs-metadata.js';
import { answerCrypto, cryptoLine, newKey, senderPolicy, toSrtpOffer } from '../support/srtp-offer.js';
import { firstHeader } from '../../src/sip/message.js';
import type { RecordingEntry } from '../../src/types.js';

const SAMPLE = 'drachtio-cisco-cube.body';

async function metricsText(d: DaemonHandle): Promise<string> {
  return (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
}

function counter(text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Waits until a counter of /metrics reaches `min` (the daemon counts as packets arrive). */
async function counterAtLeast(d: DaemonHandle, name: string, labels: string, min: number): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const n = counter(await metricsText(d), name, labels);
    if (n >= min) return n;
    await sleep(50);
  }
  return counter(await metricsText(d), name, labels);
}

/** The shared sample as an INVITE whose audio m-lines are RTP/SAVP with these crypto lines. */
function srtpSampleInvite(dialog: SampleDialog, crypto: ReadonlyArray<readonly string[]>): Buffer {
  const raw = sampleMessage(SAMPLE, { serverPort: dialog.serverPort, localPort: dialog.localPort, callId: dialog.callId }).toString('utf8');
  const split = raw.indexOf('\r\n\r\n');
  const body = toSrtpOffer(raw.slice(split + 4), crypto);
  const head = raw.slice(0, split).replace(/^Content-Length:.*$/im, `Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${head}\r\n\r\n${body}`, 'utf8');
}

/** The SDP part of the sample (for a re-INVITE with new keys), RTP/SAVP with these crypto lines. */
function srtpSampleSdp(dialog: SampleDialog, crypto: ReadonlyArray<readonly string[]>): string {
  const raw = sampleMessage(SAMPLE, { serverPort: dialog.serverPort, localPort: dialog.localPort, callId: dialog.callId }).toString('utf8');
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const sdp = body.slice(body.indexOf('v=0'), body.indexOf('\n--', body.indexOf('v=0')));
  return toSrtpOffer(sdp.replace(/\r?\n/g, '\r\n').trimEnd() + '\r\n', crypto);
}

describe('SRTP (SDES) from a SIPREC client built on a shared sample', () => {
  let d: DaemonHandle;
  let entry: RecordingEntry;
  let answers: string[][] = [];
  let reAnswers: string[][] = [];
  const statuses: number[] = [];
  let dropped = { auth: 0, replay: 0 };
  // Leg 1: an unsupported suite first (skipped), then AES_CM_128_HMAC_SHA1_80 with a key
  // lifetime and a 4-octet MKI (RFC 4568 §6.1's form). Leg 2: AEAD_AES_256_GCM (RFC 7714).
  const key1 = newKey('AES_CM_128_HMAC_SHA1_80');
  const key2 = newKey('AEAD_AES_256_GCM');
  const rekey1 = newKey('AES_CM_128_HMAC_SHA1_32');
  const leg1 = cryptoLine(2, key1, { lifetime: '2^20', mki: '1:4' });
  const leg2 = cryptoLine(1, key2, { params: 'WSH=256' });
  const leg1b = cryptoLine(3, rekey1, { lifetime: '1048576' });

  beforeAll(async () => {
    d = await startDaemon();
    const dialog = new SampleDialog(d.udpPort);
    await dialog.open();
    const senders: RtpSender[] = [];
    try {
      const first = await dialog.sendInvite(srtpSampleInvite(dialog, [[`1 F8_128_HMAC_SHA1_80 inline:${key1.base64}`, leg1], [leg2]]));
      statuses.push(first.status);
      if (first.status !== 200) return;
      const sdp = first.body.toString('utf8');
      answers = answerCrypto(sdp);
      const media = answerMedia(sdp);
      senders.push(new RtpSender({ port: media[0]!.port, toneHz: 440, srtp: senderPolicy(leg1) }));
      senders.push(new RtpSender({ port: media[1]!.port, toneHz: 1000, srtp: senderPolicy(leg2) }));
      for (const s of senders) await s.open();
      for (const s of senders) s.start();
      await sleep(1000);

      // One flipped bit in the payload of a fresh packet (an index not yet seen, so the
      // replay check passes it on): authentication fails.
      const before = await metricsText(d);
      const flipped = senders[0]!.nextWire();
      flipped[20]! ^= 0x01;
      senders[0]!.sendRaw(flipped);
      // The same packet again, unchanged: the replay window refuses it.
      senders[1]!.sendRaw(Buffer.from(senders[1]!.lastWire!));
      dropped = {
        auth: (await counterAtLeast(d, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_auth_failed"', counter(before, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_auth_failed"') + 1)) - counter(before, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_auth_failed"'),
        replay: (await counterAtLeast(d, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_replayed"', counter(before, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_replayed"') + 1)) - counter(before, 'tallenne_rtp_packets_dropped_total', 'reason="srtp_replayed"'),
      };
      await sleep(500);

      // Re-key leg 1 (a new suite and key); leg 2 repeats its offer and keeps its keys.
      const re = await dialog.request('INVITE', { contentType: 'application/sdp', body: srtpSampleSdp(dialog, [[leg1b], [leg2]]) });
      statuses.push(re.status);
      reAnswers = answerCrypto(re.body.toString('utf8'));
      senders[0]!.setSrtp(senderPolicy(leg1b));
      await sleep(1500);
      for (const s of senders) s.stop();
      statuses.push((await dialog.request('BYE')).status);
    } finally {
      for (const s of senders) s.close();
      dialog.close();
    }
    await d.waitForLog((l) => l.msg === 'recording stored', 30_000);
    const entries = await storedEntries(join(d.dir, 'data'));
    entry = entries.find((e) => e.callId === dialog.callId)!;
  }, 60_000);

  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('answers RTP/SAVP with one a=crypto per leg: the first usable offered tag and suite, with our own key', () => {
    expect(statuses).toEqual([200, 200, 200]);
    expect(answers[0]).toHaveLength(1);
    expect(answers[0]![0]).toMatch(/^2 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}$/);
    expect(answers[1]![0]).toMatch(/^1 AEAD_AES_256_GCM inline:[A-Za-z0-9+/]{59}=?$/);
    expect(answers[0]![0]).not.toContain(key1.base64);
    // The re-offer: leg 1 re-keyed (new tag, suite and answer key), leg 2 keeps its answer.
    expect(reAnswers[0]![0]).toMatch(/^3 AES_CM_128_HMAC_SHA1_32 inline:/);
    expect(reAnswers[0]![0]).not.toBe(answers[0]![0]);
    expect(reAnswers[1]).toEqual(answers[1]);
    const answered = d.logs.find((l) => l.msg === 'call answered');
    expect(answered?.srtp).toEqual(['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_256_GCM']);
    expect(d.logs.filter((l) => l.msg === 'leg re-keyed').map((l) => [l.leg, l.srtp])).toEqual([[0, 'AES_CM_128_HMAC_SHA1_32']]);
  });

  it('refuses and counts a packet with one flipped bit and a replayed packet', () => {
    expect(dropped.auth).toBeGreaterThanOrEqual(1);
    expect(dropped.replay).toBeGreaterThanOrEqual(1);
  });

  it('records both legs decrypted: each tone on its channel, leg 1 before and after the re-key', () => {
    expect(entry.status).toBe('complete');
    expect(entry.legs.map((l) => l.label)).toEqual(['1', '2']);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', entry.file));
    const early = [8000 * 0.3, 8000 * 1.0] as const;
    expect(tonePower(pcm.channels[0]!, 8000, 440, ...early)).toBeGreaterThan(0.3);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, ...early)).toBeGreaterThan(0.3);
    // The last 1.5 s of the call came after the re-key (the BYE followed the senders' stop):
    // the file's end, measured from the file itself, not from two clocks.
    const end = pcm.channels[0]!.length;
    const late = [end - 8000 * 1.2, end - 8000 * 0.3] as const;
    expect(tonePower(pcm.channels[0]!, 8000, 440, ...late), 'leg 1 after the re-key').toBeGreaterThan(0.3);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, ...late)).toBeGreaterThan(0.3);
  });

  it('writes no SDES key, offered or answered, to any line it printed', () => {
    const out = d.output();
    const answered = [...answers.flat(), ...reAnswers.flat()].map((a) => /inline:([A-Za-z0-9+/=]+)/.exec(a)![1]!);
    for (const k of [key1.base64, key2.base64, rekey1.base64, ...answered]) {
      expect(out.includes(k)).toBe(false);
      // Without its padding too (a key cut anywhere would still be found by its first 16 characters).
      expect(out.includes(k.slice(0, 16))).toBe(false);
    }
  });

  it('refuses a DTLS-SRTP offer with 488 and malformed crypto lines with 400, each counted', async () => {
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    try {
      const dtls = toSrtpOffer(offerSdp(['1']), [[]], 'UDP/TLS/RTP/SAVP').replace(/(m=audio.*\r\n)/, '$1a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB\r\na=setup:actpass\r\n');
      const r1 = await client.invite({ body: dtls, contentType: 'application/sdp' });
      expect(r1.status).toBe(488);
      expect(firstHeader(r1.headers, 'warning')).toMatch(/DTLS-SRTP is not/);
      const bad = toSrtpOffer(offerSdp(['1']), [['1 AES_CM_128_HMAC_SHA1_80 inline:not-base64!']]);
      const c2 = new SipTestClient('udp', d.udpPort);
      await c2.open();
      const r2 = await c2.invite({ body: bad, contentType: 'application/sdp' });
      c2.close();
      expect(r2.status).toBe(400);
      const m = await metricsText(d);
      expect(counter(m, 'tallenne_calls_rejected_total', 'reason="srtp_unsupported"')).toBeGreaterThanOrEqual(1);
      expect(counter(m, 'tallenne_calls_rejected_total', 'reason="malformed"')).toBeGreaterThanOrEqual(1);
    } finally {
      client.close();
    }
  });
});

/**
 * Both senders run until `reason` has counted 1.5 s of the second one's packets; the call
 * then ends, and its recording holds the first sender's 440 Hz tone and none of the second's
 * 1000 Hz (one m-line in a plain INVITE: the caller, on the left channel).
 */
async function expectOnlyFirstSource(d: DaemonHandle, client: SipTestClient, senders: readonly RtpSender[], reason: string): Promise<void> {
  const dropped = await counterAtLeast(d, 'tallenne_rtp_packets_dropped_total', `reason="${reason}"`, 75);
  for (const s of senders) s.stop();
  expect(dropped).toBeGreaterThanOrEqual(75);
  await client.bye();
  await d.waitForLog((l) => l.msg === 'recording stored');
  const e = (await storedEntries(join(d.dir, 'data'))).find((x) => x.callId === client.callId)!;
  const left = decodeWithFfmpeg(join(d.dir, 'data', e.file)).channels[0]!;
  expect(tonePower(left, 8000, 440, 2400, 8000)).toBeGreaterThan(0.3);
  expect(tonePower(left, 8000, 1000, 2400, 8000)).toBeLessThan(0.05);
}

describe('the RTP source rules and srtp = "required"', () => {
  let strict: DaemonHandle;
  let latch: DaemonHandle;

  beforeAll(async () => {
    [strict, latch] = await Promise.all([
      startDaemon({ set: { rtp: 'srtp = "required"\nsource = "strict"' } }),
      startDaemon(),
    ]);
  }, 60_000);

  afterAll(async () => {
    for (const d of [strict, latch]) {
      await d?.kill();
      if (d) removeDir(d.dir);
    }
  });

  it('srtp = "required" refuses a plain-RTP offer with 488 and counts it', async () => {
    const client = new SipTestClient('udp', strict.udpPort);
    await client.open();
    try {
      const res = await client.invite({ body: offerSdp(['1']), contentType: 'application/sdp' });
      expect(res.status).toBe(488);
      expect(firstHeader(res.headers, 'warning')).toMatch(/requires SRTP/);
      expect(counter(await metricsText(strict), 'tallenne_calls_rejected_total', 'reason="srtp_required"')).toBe(1);
    } finally {
      client.close();
    }
  });

  it('strict takes SRTP only from the offered port: another port is dropped and counted', async () => {
    // The offer names a port the offered sender then binds to (found free by a probe).
    const probe = new RtpSender({ port: 1, toneHz: 440 });
    const ourPort = await probe.open();
    probe.close();
    const key = newKey('AES_CM_128_HMAC_SHA1_80');
    const attr = cryptoLine(1, key);
    const sdp = toSrtpOffer(offerSdp(['1']), [[attr]]).replace(/m=audio \d+/, `m=audio ${ourPort}`);
    const client = new SipTestClient('udp', strict.udpPort);
    await client.open();
    const senders: RtpSender[] = [];
    try {
      const res = await client.invite({ body: sdp, contentType: 'application/sdp' });
      expect(res.status).toBe(200);
      const port = answerMedia(res.body.toString('utf8'))[0]!.port;
      senders.push(new RtpSender({ port, toneHz: 440, srtp: senderPolicy(attr), localPort: ourPort }));
      senders.push(new RtpSender({ port, toneHz: 1000, srtp: senderPolicy(attr) }));
      for (const s of senders) await s.open();
      for (const s of senders) s.start();
      await expectOnlyFirstSource(strict, client, senders, 'wrong_source');
    } finally {
      for (const s of senders) s.close();
      client.close();
    }
  });

  it('latch drops a second source after it latched, and counts it', async () => {
    const client = new SipTestClient('udp', latch.udpPort);
    await client.open();
    const senders: RtpSender[] = [];
    try {
      const res = await client.invite({ body: offerSdp(['1']), contentType: 'application/sdp' });
      expect(res.status).toBe(200);
      expect(answerCrypto(res.body.toString('utf8'))).toEqual([[]]);
      const port = answerMedia(res.body.toString('utf8'))[0]!.port;
      const first = new RtpSender({ port, toneHz: 440 });
      senders.push(first);
      await first.open();
      first.start();
      await latch.waitForLog((l) => l.msg === 'first rtp packet');
      const second = new RtpSender({ port, toneHz: 1000 });
      senders.push(second);
      await second.open();
      second.start();
      await expectOnlyFirstSource(latch, client, senders, 'second_source');
    } finally {
      for (const s of senders) s.close();
      client.close();
    }
  });
});
