/**
 * Call features end to end against the real daemon: metadata updates by re-INVITE and
 * UPDATE (a conference growing to four parties and shrinking again, with a stream added
 * mid-call), a codec change without a gap, RFC 4733 DTMF and RFC 3389 comfort noise,
 * plain SIP without metadata over TCP (roles from From/To and the configured rules), two
 * sessions linked by their SIPREC group, IPv6, and pause/resume by a=inactive with the
 * inactivity watchdog armed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, randomRtpRange, makeConfig, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { multipart, offerSdp, rsMetadataDoc, type MdParticipant } from '../support/rs-metadata.js';
import { sleep } from '../support/legs.js';
import { storedEntry } from '../support/index-reader.js';
import { decodeWithFfmpeg, ffprobe, rms, tonePower } from '../support/audio.js';
import type { RecordingEntry } from '../../src/types.js';
import { tempDir } from '../support/cleanup.js';

const RULES = `
[roles]
service_numbers = ["+358201234567"]
internal_pattern = "^1\\\\d{3}$"
[[agents]]
id = "aino"
name = "Aino Agentti"
extensions = ["1001"]
team = "helpdesk"
[[agents]]
id = "ben"
name = "Ben Esimies"
extensions = ["1002"]
team = "helpdesk"
`;

const CUSTOMER: MdParticipant = { id: 'cust', aor: 'sip:+358401234567@carrier.example', sends: ['s1'], receives: ['s2'] };
const AGENT: MdParticipant = { id: 'aino', aor: 'sip:1001@pbx.example', sends: ['s2'], receives: ['s1'] };
const STREAMS = [{ id: 's1', label: '1' }, { id: 's2', label: '2' }];

/** Recording id of the call answered most recently after `since` log lines. */
async function answeredId(d: DaemonHandle, since: number): Promise<string> {
  const l = await d.waitForLog((x) => x.msg === 'call answered' && d.logs.indexOf(x) >= since);
  return l.recording as string;
}

async function stored(d: DaemonHandle, id: string): Promise<RecordingEntry> {
  await d.waitForLog((l) => l.msg === 'recording stored' && l.recording === id, 30_000);
  return storedEntry(join(d.dir, 'data'), id);
}

async function sendersFor(sdp: string, tones: readonly number[], host = '127.0.0.1'): Promise<RtpSender[]> {
  const media = answerMedia(sdp);
  const out: RtpSender[] = [];
  for (const [i, m] of media.entries()) {
    const s = new RtpSender({ port: m.port, host, toneHz: tones[i] ?? 500, payloadType: m.payloadTypes[0]!, law: m.payloadTypes[0] === 8 ? 'PCMA' : 'PCMU' });
    await s.open();
    out.push(s);
  }
  return out;
}

/** Sample index of a time in seconds at 8 kHz. */
const at8k = (seconds: number): number => Math.round(seconds * 8000);

/** 20 ms frames of `ch` in [fromS, toS) whose level is below `floor`. */
function quietFrames(ch: Int16Array, rate: number, fromS: number, toS: number, floor: number): number {
  let n = 0;
  for (let t = Math.round(fromS * rate); t + rate / 50 <= toS * rate; t += rate / 50) if (rms(ch, t, t + rate / 50) < floor) n++;
  return n;
}

describe('call features on one daemon', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({ extraToml: RULES });
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('a conference grows to four parties and shrinks by re-INVITE and UPDATE; joins, leaves and a new stream are recorded', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('udp', d.udpPort);
    await c.open();
    const first = multipart(offerSdp(['1', '2']), rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS }));
    const res = await c.invite({ ...first, headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const id = await answeredId(d, since);
    const senders = await sendersFor(res.body.toString(), [440, 1000]);
    for (const s of senders) s.start();
    await sleep(800);

    // re-INVITE, complete snapshot: supervisor Ben joins on the agent's side (mixed stream).
    const BEN: MdParticipant = { id: 'ben', aor: 'sip:1002@pbx.example', sends: ['s2'], receives: ['s1'] };
    const AINO_MIXED: MdParticipant = { ...AGENT };
    const three = multipart(offerSdp(['1', '2'], { version: 2 }), rsMetadataDoc({ participants: [CUSTOMER, AINO_MIXED, BEN], streams: STREAMS }));
    const r1 = await c.request('INVITE', three);
    const benJoinedMs = Date.now() - t0;
    expect(r1.status).toBe(200);
    await sleep(800);

    // UPDATE, partial, written with a namespace prefix: a second outside caller joins with a
    // stream of their own on a new m-line.
    const GUEST: MdParticipant = { id: 'guest', aor: 'tel:+358409876543', sends: ['s3'], receives: ['s1', 's2'] };
    const four = multipart(
      offerSdp(['1', '2', '3'], { version: 3 }),
      rsMetadataDoc({ mode: 'partial', prefix: 'tns', participants: [GUEST], streams: [{ id: 's3', label: '3' }] }),
    );
    const r2 = await c.request('UPDATE', four);
    const guestJoinedMs = Date.now() - t0;
    expect(r2.status).toBe(200);
    const media = answerMedia(r2.body.toString());
    expect(media.map((m) => m.label)).toEqual(['1', '2', '3']);
    expect(media[0]!.port).toBe(answerMedia(res.body.toString())[0]!.port);
    expect(media[2]!.port).toBeGreaterThan(0);
    const guest = new RtpSender({ port: media[2]!.port, toneHz: 700 });
    await guest.open();
    guest.start();
    await sleep(800);

    // re-INVITE, partial: Ben leaves (disassociate-time).
    const leave = multipart(
      offerSdp(['1', '2', '3'], { version: 4 }),
      rsMetadataDoc({ mode: 'partial', participants: [{ id: 'ben', leftAt: new Date().toISOString() }] }),
    );
    const r3 = await c.request('INVITE', leave);
    const benLeftMs = Date.now() - t0;
    expect(r3.status).toBe(200);
    await sleep(800);
    for (const s of [...senders, guest]) s.close();
    expect((await c.bye()).status).toBe(200);
    c.close();

    const e = await stored(d, id);
    expect(e.participants.map((p) => [p.id, p.role])).toEqual([['cust', 'customer'], ['aino', 'agent'], ['ben', 'agent'], ['guest', 'other']]);
    const [cust, aino, ben, g] = e.participants;
    expect(cust!.number).toBe('+358401234***');
    expect(cust!.joinedMs).toBe(0);
    expect(cust!.leftMs).toBeUndefined();
    expect(aino!.number).toBe('1001');
    expect(aino!.agentId).toBe('aino');
    expect(ben!.agentName).toBe('Ben Esimies');
    expect(Math.abs(ben!.joinedMs! - benJoinedMs)).toBeLessThan(300);
    expect(Math.abs(ben!.leftMs! - benLeftMs)).toBeLessThan(300);
    expect(g!.number).toBe('+358409876***');
    expect(g!.sends).toEqual(['3']);
    expect(Math.abs(g!.joinedMs! - guestJoinedMs)).toBeLessThan(300);
    expect(g!.leftMs).toBeUndefined();

    // The added stream is a third leg, heard on the outside (left) channel with the customer.
    expect(e.legs.map((l) => [l.label, l.role])).toEqual([['1', 'customer'], ['2', 'agent'], ['3', 'other']]);
    expect(e.legs[2]!.packets).toBeGreaterThan(40);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', e.file));
    const [left, right] = pcm.channels;
    const after = (guestJoinedMs + 300) / 1000;
    expect(tonePower(left!, 8000, 700, at8k(after), at8k(after + 1))).toBeGreaterThan(0.2);
    expect(tonePower(left!, 8000, 440, at8k(after), at8k(after + 1))).toBeGreaterThan(0.2);
    expect(tonePower(right!, 8000, 700, at8k(after), at8k(after + 1))).toBeLessThan(0.05);
    expect(tonePower(left!, 8000, 700, at8k(0.2), at8k(1.5))).toBeLessThan(0.05);
  });

  it('a codec change by re-INVITE (new SSRC too) keeps recording without a gap', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('udp', d.udpPort);
    await c.open();
    const res = await c.invite({ ...multipart(offerSdp(['1', '2'], { codecs: '0 101' }), rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS })), headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const id = await answeredId(d, since);
    const senders = await sendersFor(res.body.toString(), [440, 1000]);
    for (const s of senders) s.start();
    await sleep(1200);
    const r = await c.request('INVITE', { body: offerSdp(['1', '2'], { version: 2, codecs: '8 101' }), contentType: 'application/sdp' });
    expect(r.status).toBe(200);
    expect(answerMedia(r.body.toString()).map((m) => m.payloadTypes[0])).toEqual([8, 8]);
    const switchS = (Date.now() - t0) / 1000;
    senders.forEach((s, i) => s.switchTo({ payloadType: 8, law: 'PCMA', ssrc: 0x1000 + i }));
    await sleep(1200);
    for (const s of senders) s.close();
    await c.bye();
    c.close();

    const e = await stored(d, id);
    expect(e.legs.map((l) => [l.codec, l.ssrcs])).toEqual([['PCMA', 2], ['PCMA', 2]]);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', e.file));
    for (const [ch, hz] of [[0, 440], [1, 1000]] as const) {
      const samples = pcm.channels[ch]!;
      // The tone on both sides of the switch (measured apart: the new source's phase differs).
      expect(tonePower(samples, 8000, hz, at8k(switchS - 0.7), at8k(switchS - 0.1))).toBeGreaterThan(0.5);
      expect(tonePower(samples, 8000, hz, at8k(switchS + 0.1), at8k(switchS + 0.7))).toBeGreaterThan(0.5);
      // At most one 20 ms frame may fall between the two sources.
      expect(quietFrames(samples, 8000, switchS - 0.5, switchS + 0.5, 1000)).toBeLessThanOrEqual(1);
    }
  });

  it('RFC 4733 digits are stored with their times and are not audio; comfort noise is silence', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('udp', d.udpPort);
    await c.open();
    const res = await c.invite({ ...multipart(offerSdp(['1', '2']), rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS })), headers: ['Require: siprec'] });
    const t0 = Date.now();
    const id = await answeredId(d, since);
    const [cust, agent] = await sendersFor(res.body.toString(), [440, 1000]);
    cust!.start();
    agent!.start();
    await sleep(700);
    const fiveAt = Date.now() - t0;
    await cust!.sendEvent(5, 200);
    await sleep(400);
    const hashAt = Date.now() - t0;
    await cust!.sendEvent(11, 160);
    await sleep(200);
    const cnFrom = (Date.now() - t0) / 1000;
    cust!.comfortNoise = true;
    await sleep(500);
    const cnTo = (Date.now() - t0) / 1000;
    cust!.comfortNoise = false;
    await sleep(500);
    cust!.close();
    agent!.close();
    await c.bye();
    c.close();

    const e = await stored(d, id);
    expect(e.dtmf.map((x) => [x.digit, x.leg, x.durationMs])).toEqual([['5', 0, 200], ['#', 0, 160]]);
    expect(Math.abs(e.dtmf[0]!.atMs - fiveAt)).toBeLessThan(120);
    expect(Math.abs(e.dtmf[1]!.atMs - hashAt)).toBeLessThan(120);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', e.file));
    const left = pcm.channels[0]!;
    for (const ev of e.dtmf) {
      const from = at8k((ev.atMs + 30) / 1000);
      const to = at8k((ev.atMs + ev.durationMs - 30) / 1000);
      // Nothing of the event is audio: no DTMF tone pair (5 = 770+1336 Hz, # = 941+1477 Hz), no sound.
      expect(rms(left, from, to)).toBeLessThan(300);
      for (const hz of [770, 1336, 941, 1477]) expect(tonePower(left, 8000, hz, from, to)).toBeLessThan(0.05);
    }
    expect(rms(left, at8k(cnFrom + 0.1), at8k(cnTo - 0.1))).toBeLessThan(300);
    expect(tonePower(left, 8000, 440, at8k(cnTo + 0.1), at8k(cnTo + 0.4))).toBeGreaterThan(0.5);
    expect(e.legs[0]!.codec).toBe('PCMU');
  });

  it('plain SIP over TCP without metadata: recorded anyway, roles from From/To and the configured rules', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('tcp', d.tcpPort);
    await c.open();
    const sdp = offerSdp(['x'], { direction: 'sendrecv' }).replace('a=label:x\r\n', '');
    const res = await c.invite({
      body: sdp, contentType: 'application/sdp',
      from: '"Asiakas" <sip:0401234567@carrier.example;user=phone>',
      to: '<sip:+358201234567@127.0.0.1>',
      uri: `sip:+358201234567@127.0.0.1:${d.tcpPort};transport=tcp`,
    });
    expect(res.status).toBe(200);
    const id = await answeredId(d, since);
    const [s] = await sendersFor(res.body.toString(), [440]);
    s!.start();
    await sleep(1000);
    s!.close();
    await c.bye();
    c.close();
    const e = await stored(d, id);
    expect(e.siprec).toBe(false);
    expect(e.direction).toBe('inbound');
    expect(e.customerNumber).toBe('+358401234***');
    expect(e.customerNumberHash).toMatch(/^[0-9a-f]{64}$/);
    expect(e.serviceNumber).toBe('+358201234567');
    expect(e.participants.map((p) => [p.id, p.role, p.number])).toEqual([['from', 'customer', '+358401234***'], ['to', 'agent', '+358201234567']]);
    expect(e.legs).toHaveLength(1);
    expect(e.legs[0]!.packets).toBeGreaterThan(30);
  });

  it('a new session in the same SIPREC group (after a transfer) carries the same group id', async () => {
    const group = 'bmV0c2FwaWVucy1ncm91cC0x';
    const ids: string[] = [];
    for (const [n, agent] of [[1, AGENT], [2, { ...AGENT, id: 'ben', aor: 'sip:1002@pbx.example' }]] as const) {
      const since = d.logs.length;
      const c = new SipTestClient('udp', d.udpPort);
      await c.open();
      const md = rsMetadataDoc({ sessionId: `c2Vzc2lvbi${n}`, groupId: group, participants: [CUSTOMER, agent], streams: STREAMS });
      // The second session puts its metadata first, typed without +xml, as some SRCs do.
      const body = n === 1 ? multipart(offerSdp(['1', '2']), md) : multipart(offerSdp(['1', '2']), md, { metadataFirst: true, metadataType: 'application/rs-metadata' });
      const res = await c.invite({ ...body, headers: ['Require: siprec'] });
      expect(res.status).toBe(200);
      ids.push(await answeredId(d, since));
      const senders = await sendersFor(res.body.toString(), [440, 1000]);
      for (const s of senders) s.start();
      await sleep(600);
      for (const s of senders) s.close();
      await c.bye();
      c.close();
    }
    const [a, b] = await Promise.all(ids.map((id) => stored(d, id)));
    expect(a!.id).not.toBe(b!.id);
    expect(a!.groupId).toBe(group);
    expect(b!.groupId).toBe(group);
    expect(a!.siprecSessionId).toBe('c2Vzc2lvbi1');
    expect(b!.siprecSessionId).toBe('c2Vzc2lvbi2');
    expect(a!.agentId).toBe('aino');
    expect(b!.agentId).toBe('ben');
    expect(b!.customerNumberHash).toBe(a!.customerNumberHash);
  });
});

describe('pause and resume by a=inactive, with the inactivity watchdog armed', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    // A 1 s inactivity timeout: a 2 s pause without RTP must not end the call. Digits masked.
    const dir = tempDir('pause');
    const configText = makeConfig(dir, randomRtpRange())
      .replace('[rtp]\n', '[rtp]\ninactivity_timeout = "1s"\n')
      .replace('[privacy]\n', '[privacy]\nmask_dtmf = true\n');
    d = await startDaemon({ dir, configText });
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('pauses for 2 s of a 6 s call: 6 s of output, no tone while paused, the interval stored', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('udp', d.udpPort);
    await c.open();
    const md = rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS });
    const res = await c.invite({ ...multipart(offerSdp(['1', '2']), md), headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const id = await answeredId(d, since);
    const senders = await sendersFor(res.body.toString(), [440, 1000]);
    for (const s of senders) s.start();
    await sleep(1000);
    await senders[0]!.sendEvent(5, 200);
    await sleep(2000 - (Date.now() - t0));

    // Pause: the SRC offers a=inactive and stops sending (RTP silence longer than the timeout).
    const p = await c.request('INVITE', { body: offerSdp(['1', '2'], { version: 2, direction: 'inactive' }), contentType: 'application/sdp' });
    const pausedAt = Date.now() - t0;
    expect(p.status).toBe(200);
    expect(answerMedia(p.body.toString()).map((m) => m.direction)).toEqual(['inactive', 'inactive']);
    for (const s of senders) s.stop();
    await sleep(2000);
    for (const s of senders) s.skip(2000);
    const r = await c.request('INVITE', { body: offerSdp(['1', '2'], { version: 3, direction: 'sendonly' }), contentType: 'application/sdp' });
    const resumedAt = Date.now() - t0;
    expect(r.status).toBe(200);
    expect(answerMedia(r.body.toString()).map((m) => m.direction)).toEqual(['recvonly', 'recvonly']);
    for (const s of senders) s.start();
    await sleep(6000 - (Date.now() - t0));
    for (const s of senders) s.close();
    const bye = await c.bye();
    const endedAt = Date.now() - t0;
    expect(bye.status).toBe(200);
    c.close();

    const e = await stored(d, id);
    expect(e.endReason).toBe('bye');
    expect(Math.abs(e.durationMs - endedAt)).toBeLessThan(100);
    expect(Math.abs(e.durationMs - 6000)).toBeLessThan(200);
    expect(e.pauses).toHaveLength(1);
    expect(Math.abs(e.pauses[0]!.startMs - pausedAt)).toBeLessThan(100);
    expect(Math.abs(e.pauses[0]!.endMs! - resumedAt)).toBeLessThan(100);
    expect(e.dtmf.map((x) => x.digit)).toEqual(['*masked*']);

    const file = join(d.dir, 'data', e.file);
    expect(Math.abs(ffprobe(file).durationSec - e.durationMs / 1000)).toBeLessThan(0.06);
    const pcm = decodeWithFfmpeg(file);
    for (const [ch, hz] of [[0, 440], [1, 1000]] as const) {
      const x = pcm.channels[ch]!;
      const at = (ms: number): number => Math.round((ms / 1000) * 8000);
      expect(tonePower(x, 8000, hz, at(300), at(900))).toBeGreaterThan(0.5);
      // Silence (what is left is the codec's residue, far below any speech).
      expect(rms(x, at(e.pauses[0]!.startMs + 100), at(e.pauses[0]!.endMs! - 100))).toBeLessThan(30);
      expect(tonePower(x, 8000, hz, at(e.pauses[0]!.startMs + 100), at(e.pauses[0]!.endMs! - 100))).toBeLessThan(0.05);
      expect(tonePower(x, 8000, hz, at(e.pauses[0]!.endMs! + 300), at(5700))).toBeGreaterThan(0.5);
    }
  });
});

describe('IPv6', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({ ipv6: true });
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('records a SIPREC call from a client on ::1', async () => {
    const since = d.logs.length;
    const c = new SipTestClient('udp', d.udpPort, '::1');
    await c.open();
    const res = await c.invite({ ...multipart(offerSdp(['1', '2'], { address: '::1' }), rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS })), headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toMatch(/^c=IN IP6 ::1\r$/m);
    const id = await answeredId(d, since);
    const senders = await sendersFor(res.body.toString(), [440, 1000], '::1');
    for (const s of senders) s.start();
    await sleep(1200);
    for (const s of senders) s.close();
    expect((await c.bye()).status).toBe(200);
    c.close();
    const e = await stored(d, id);
    expect(e.legs.map((l) => l.packets > 40)).toEqual([true, true]);
    const pcm = decodeWithFfmpeg(join(d.dir, 'data', e.file));
    expect(tonePower(pcm.channels[0]!, 8000, 440, 2400, 8000)).toBeGreaterThan(0.5);
    expect(tonePower(pcm.channels[1]!, 8000, 1000, 2400, 8000)).toBeGreaterThan(0.5);
    expect(ffprobe(join(d.dir, 'data', e.file)).channels).toBe(2);
  });
});

