/**
 * A call's life against the real daemon process: rejections, the RTP inactivity timeout,
 * a SIGKILL mid-call (recovered as truncated at the next start) and a graceful SIGTERM.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonHandle } from '../support/daemon.js';
import { daemonsPerTest, showRecording } from '../support/daemon-per-test.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { tonesForAnswer, startAll, closeAll, sleep } from '../support/legs.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { decodeWithFfmpeg, ffprobe, tonePower, rms } from '../support/audio.js';
import { firstHeader } from '../../src/sip/message.js';

const daemon = daemonsPerTest();
const show = showRecording;

async function placeCall(d: DaemonHandle, opts: { sdp?: string } = {}) {
  const client = new SipTestClient('udp', d.udpPort);
  await client.open();
  const { body, contentType } = siprecMultipart(opts.sdp ?? siprecSdp(), rsMetadata('+358501112233', '1001'));
  const res = await client.invite({ body, contentType, headers: ['Require: siprec'] });
  return { client, res, media: res.status === 200 ? answerMedia(res.body.toString()) : [] };
}

describe('daemon lifecycle', () => {
  it('rejects what it cannot record and keeps running', async () => {
    const d = await daemon({ set: { calls: 'max_concurrent = 1' } });
    const gsm = siprecSdp({ codecs: '3' }).replace(/a=rtpmap:0 PCMU\/8000\r\na=rtpmap:8 PCMA\/8000\r\n/g, 'a=rtpmap:3 GSM/8000\r\n');
    const noCodec = await placeCall(d, { sdp: gsm });
    expect(noCodec.res.status).toBe(488);
    noCodec.client.close();

    const badSdp = new SipTestClient('udp', d.udpPort);
    await badSdp.open();
    const bad = await badSdp.invite({ body: 'this is not SDP', contentType: 'application/sdp' });
    expect(bad.status).toBe(400);
    expect(firstHeader(bad.headers, 'warning')).toBeDefined();
    badSdp.close();

    const first = await placeCall(d);
    expect(first.res.status).toBe(200);
    const second = await placeCall(d);
    expect(second.res.status).toBe(503);
    expect(firstHeader(second.res.headers, 'retry-after')).toBeDefined();
    second.client.close();
    expect((await first.client.bye()).status).toBe(200);
    first.client.close();
    await d.waitForLog((l) => l.msg === 'recording stored');
    const rejected = d.logs.filter((l) => l.msg === 'INVITE rejected').map((l) => l.why);
    expect(rejected).toEqual(['no_codec', 'malformed', 'capacity']);
  });

  it('answers a session-refresh re-INVITE without SDP with the agreed ports, and an UPDATE without SDP with 200', async () => {
    const d = await daemon();
    const { client, res, media } = await placeCall(d);
    expect(res.status).toBe(200);
    const refresh = await client.request('INVITE', { headers: ['Session-Expires: 1800;refresher=uac'] });
    expect(refresh.status).toBe(200);
    expect(answerMedia(refresh.body.toString()).map((m) => m.port)).toEqual(media.map((m) => m.port));
    const update = await client.request('UPDATE');
    expect(update.status).toBe(200);
    expect((await client.bye()).status).toBe(200);
    client.close();
    await d.waitForLog((l) => l.msg === 'recording stored');
  });

  it('ends a call with a BYE when RTP stops for the inactivity timeout', async () => {
    const d3 = await daemon({ set: { rtp: 'inactivity_timeout = "2s"' } });
    const { client, res, media } = await placeCall(d3);
    expect(res.status).toBe(200);
    const s = new RtpSender({ port: media[0]!.port, toneHz: 440 });
    await s.open();
    s.start();
    await new Promise((r) => setTimeout(r, 500));
    s.stop();
    const bye = await client.waitFor((m) => m.kind === 'request' && m.method === 'BYE', 10_000);
    expect(bye.kind).toBe('request');
    const stored = await d3.waitForLog((l) => l.msg === 'recording stored');
    const entry = show(d3, stored.recording as string);
    expect(entry.endReason).toBe('rtp-timeout');
    expect(entry.status).toBe('complete');
    s.close();
    client.close();
  });

  it('asks the peer of a paused, silent call whether it still has it: kept while it answers, ended as peer-gone once it says 481', async () => {
    const d = await daemon({ set: { rtp: 'inactivity_timeout = "1s"' } });
    // Offered paused (a=inactive): no RTP is expected, so silence alone ends nothing.
    const paused = siprecSdp({ direction: 'inactive' });
    const alive = await placeCall(d, { sdp: paused });
    const lost = await placeCall(d, { sdp: paused });
    expect([alive.res.status, lost.res.status]).toEqual([200, 200]);
    const options = (c: SipTestClient) => c.received.filter((m) => m.kind === 'request' && m.method === 'OPTIONS').length;
    const byes = (c: SipTestClient) => c.received.filter((m) => m.kind === 'request' && m.method === 'BYE').length;
    // The live peer answers each probe, one inactivity timeout after the last answer.
    await alive.client.waitFor(() => options(alive.client) >= 2, 10_000);
    // The other peer has lost the call (481 to the probe): the daemon hangs up.
    lost.client.optionsAnswer = 481;
    await lost.client.waitFor((m) => m.kind === 'request' && m.method === 'BYE', 10_000);
    await alive.client.waitFor(() => options(alive.client) >= 4, 10_000);
    expect(byes(alive.client)).toBe(0);
    expect((await alive.client.bye()).status).toBe(200);
    for (const c of [alive, lost]) c.client.close();

    await d.waitForLog((l) => l.msg === 'recording stored' && d.logs.filter((x) => x.msg === 'recording stored').length >= 2);
    const reasons = d.logs.filter((l) => l.msg === 'recording stored').map((l) => show(d, l.recording as string).endReason).sort();
    expect(reasons).toEqual(['bye', 'peer-gone']);
    const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
    expect(Number(/^tallenne_call_probes_total\{result="answered"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(4);
    expect(/^tallenne_call_probes_total\{result="gone"\} 1$/m.test(metrics)).toBe(true);
    // Probes go to the peers; the requests counter still counts only what peers send (and our BYEs).
    expect(/^tallenne_sip_requests_total\{method="OPTIONS"\}/m.test(metrics)).toBe(false);
  });

  it('recovers a call cut by SIGKILL as a truncated recording with the audio captured before the kill', async () => {
    const d = await daemon();
    const { client, res } = await placeCall(d);
    expect(res.status).toBe(200);
    const legs = await tonesForAnswer(res.body.toString());
    startAll(legs);
    await sleep(2000);
    await d.kill();
    closeAll(legs);
    client.close();
    expect(readdirSync(join(d.dir, 'data', 'spool')).filter((f) => f.endsWith('.spool'))).toHaveLength(1);

    const again = await daemon({ dir: d.dir, configText: readFileSync(d.configFile, 'utf8') });
    const stored = await again.waitForLog((l) => l.msg === 'recording stored');
    const entry = show(again, stored.recording as string);
    expect(entry.status).toBe('truncated');
    expect(entry.customerNumber).toBe('+358501112***');
    expect(readdirSync(join(d.dir, 'data', 'spool')).filter((f) => f.endsWith('.spool'))).toHaveLength(0);
    const file = join(d.dir, 'data', entry.file as string);
    const probe = ffprobe(file);
    // Captured up to the last flush before the kill (flushes run every 200 ms).
    expect(probe.durationSec).toBeGreaterThan(1.5);
    expect(probe.durationSec).toBeLessThan(2.6);
    const pcm = decodeWithFfmpeg(file);
    expect(tonePower(pcm.channels[0]!, 8000, 440, 4000, 12000)).toBeGreaterThan(0.5);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, 4000, 12000)).toBeGreaterThan(0.5);
  });

  it('stops gracefully on SIGTERM: refuses new calls, finalises the active one, exits 0', async () => {
    const base = await daemon();
    const { client, res, media } = await placeCall(base);
    expect(res.status).toBe(200);
    const s = new RtpSender({ port: media[0]!.port, toneHz: 440 });
    await s.open();
    s.start();
    await new Promise((r) => setTimeout(r, 1000));
    base.proc.kill('SIGTERM');
    await base.waitForLog((l) => l.msg === 'stopping: new calls are refused');
    const late = await placeCall(base);
    expect(late.res.status).toBe(503);
    late.client.close();
    // The active call may go on until the deadline (5 s in the test config); end it now.
    await new Promise((r) => setTimeout(r, 500));
    s.stop();
    expect((await client.bye()).status).toBe(200);
    expect(await base.exited).toBe(0);
    const stored = base.logs.find((l) => l.msg === 'recording stored');
    expect(stored).toBeDefined();
    const entry = show(base, stored!.recording as string);
    expect(entry.status).toBe('complete');
    const pcm = decodeWithFfmpeg(join(base.dir, 'data', entry.file as string));
    expect(rms(pcm.channels[0]!, 2000, 6000)).toBeGreaterThan(1000);
    s.close();
    client.close();
  });
});
