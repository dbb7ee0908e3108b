/**
 * A real user agent: baresip calls the daemon as a plain SIP endpoint over UDP, once per
 * codec (PCMU, G.722, Opus), sends a tone, and hangs up. Each call is recorded, the leg's
 * codec is the one negotiated, the output rate suits the source (8 kHz narrowband, 16 kHz
 * wideband), and the recording decodes to the tone that was sent. baresip is checked to use
 * only loopback: its SDP, and no socket bound to another address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, randomRtpRange, type DaemonHandle } from '../support/daemon.js';
import { baresipCall, inviteSdpOf, type BaresipCodec, type BaresipRun } from '../support/baresip.js';
import { storedEntries } from '../support/index-reader.js';
import { decodeWithFfmpeg, ffprobe, opusinfo, tonePower } from '../support/audio.js';
import type { RecordingEntry } from '../../src/types.js';

const CASES: ReadonlyArray<{ codec: BaresipCodec; tone: number; engine: string; rate: number }> = [
  { codec: 'PCMU', tone: 440, engine: 'PCMU', rate: 8000 },
  { codec: 'G722', tone: 1000, engine: 'G722', rate: 16000 },
  { codec: 'opus', tone: 700, engine: 'OPUS', rate: 16000 },
];

describe('baresip calls the daemon as a plain SIP endpoint over UDP', () => {
  let d: DaemonHandle;
  const runs = new Map<BaresipCodec, BaresipRun>();
  let entries: RecordingEntry[] = [];

  beforeAll(async () => {
    const daemonRtp = randomRtpRange();
    d = await startDaemon({ rtp: daemonRtp });
    // baresip's own RTP ports: a block outside the daemon's range, one per call.
    const base = daemonRtp[0] >= 30000 ? 21000 : 41000;
    const results = await Promise.all(CASES.map((c, i) => baresipCall({
      sipPort: d.udpPort, codec: c.codec, toneHz: c.tone, seconds: 4,
      rtpPorts: [base + i * 100, base + i * 100 + 99],
    })));
    CASES.forEach((c, i) => runs.set(c.codec, results[i]!));
    await d.waitForLog(() => d.logs.filter((l) => l.msg === 'recording stored').length >= CASES.length, 30_000);
    entries = await storedEntries(join(d.dir, 'data'));
  }, 60_000);

  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
    for (const r of runs.values()) removeDir(r.dir);
  });

  for (const c of CASES) {
    it(`${c.codec}: recorded, and the recording decodes to the ${c.tone} Hz tone`, () => {
      const run = runs.get(c.codec)!;
      // baresip stayed on loopback: its offer and every socket it had.
      const sdp = inviteSdpOf(run.output);
      expect(sdp, run.output.slice(-2000)).toMatch(/^c=IN IP4 127\.0\.0\.1\s*$/m);
      expect(sdp).toMatch(/^o=\S+ \d+ \d+ IN IP4 127\.0\.0\.1\s*$/m);
      expect(sdp).not.toMatch(/192\.0\.2\./);
      expect(run.socketAddresses.length).toBeGreaterThan(0);
      // baresip binds its RTP sockets to the wildcard; with 127.0.0.1 as the only target the
      // kernel sends from 127.0.0.1, so the daemon latches (and reports RTCP to) loopback.
      // What must never appear is a socket bound to the machine's own addresses.
      expect(run.socketAddresses.some((a) => a.startsWith('127.0.0.1:'))).toBe(true);
      for (const a of run.socketAddresses) expect(a).toMatch(/^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::1\]):\d+$/);

      const callId = /^Call-ID:\s*(\S+)/im.exec(run.output)?.[1];
      expect(callId).toBeDefined();
      const e = entries.find((x) => x.callId === callId);
      expect(e, `entry for ${callId}`).toBeDefined();
      expect(e!.siprec).toBe(false);
      expect(e!.status).toBe('complete');
      expect(e!.endReason).toBe('bye');
      expect(e!.legs).toHaveLength(1);
      expect(e!.legs[0]!.codec).toBe(c.engine);
      expect(e!.legs[0]!.packets).toBeGreaterThan(100);
      expect(e!.sampleRate).toBe(c.rate);
      expect(e!.durationMs).toBeGreaterThan(3000);

      const file = join(d.dir, 'data', e!.file);
      const info = opusinfo(file);
      expect(info.status).toBe(0);
      expect(info.output).toMatch(new RegExp(`Original sample rate: ${c.rate}\\s*Hz`));
      expect(ffprobe(file).channels).toBe(2);
      const pcm = decodeWithFfmpeg(file, c.rate);
      // The single plain-SIP leg is laid on the left channel.
      expect(tonePower(pcm.channels[0]!, c.rate, c.tone, c.rate * 1, c.rate * 3)).toBeGreaterThan(0.5);
      expect(tonePower(pcm.channels[1]!, c.rate, c.tone, c.rate * 1, c.rate * 3)).toBeLessThan(0.05);
    });
  }
});

describe('baresip calls with SDES-SRTP (mediaenc=srtp-mand) a daemon that requires SRTP', () => {
  let d: DaemonHandle;
  let run: BaresipRun;
  let entry: RecordingEntry | undefined;

  beforeAll(async () => {
    const daemonRtp = randomRtpRange();
    d = await startDaemon({ rtp: daemonRtp, set: { rtp: 'srtp = "required"' } });
    const base = daemonRtp[0] >= 30000 ? 21500 : 41500;
    run = await baresipCall({ sipPort: d.udpPort, codec: 'PCMU', toneHz: 440, seconds: 4, rtpPorts: [base, base + 99], srtp: true });
    await d.waitForLog((l) => l.msg === 'recording stored', 30_000);
    const callId = /^Call-ID:\s*(\S+)/im.exec(run.output)?.[1];
    entry = (await storedEntries(join(d.dir, 'data'))).find((x) => x.callId === callId);
  }, 60_000);

  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
    if (run) removeDir(run.dir);
  });

  it('offers RTP/SAVP with a=crypto, gets SRTP answered, and the recording decodes to the tone', () => {
    const sdp = inviteSdpOf(run.output);
    expect(sdp, run.output.slice(-2000)).toMatch(/^m=audio \d+ RTP\/SAVP /m);
    expect(sdp).toMatch(/^a=crypto:/m);
    const answered = d.logs.find((l) => l.msg === 'call answered');
    expect(answered?.srtp).toEqual([expect.stringMatching(/^(AES_CM_128_HMAC_SHA1_(80|32)|AEAD_AES_(128|256)_GCM)$/)]);
    expect(entry, 'entry').toBeDefined();
    expect(entry!.status).toBe('complete');
    expect(entry!.legs[0]!.packets).toBeGreaterThan(100);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', entry!.file), 8000);
    expect(tonePower(pcm.channels[0]!, 8000, 440, 8000, 24000)).toBeGreaterThan(0.5);
  });

  it('writes none of the SDES keys of the call (baresip\'s or ours) to the log', () => {
    const keys = [...run.output.matchAll(/inline:([A-Za-z0-9+/=]{20,})/g)].map((m) => m[1]!);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const k of keys) expect(d.output().includes(k.slice(0, 16))).toBe(false);
  });
});
