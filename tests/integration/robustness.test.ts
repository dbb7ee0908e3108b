/**
 * Robustness of the running daemon: malformed SIP, SDP and XML are refused with 400 and a
 * reason and are counted; every SIPREC sample, mutated (truncated, bytes flipped, huge or
 * many headers, an oversized body (513), XML nested too deep, entity expansion), neither crashes the daemon nor
 * leaks an RTP port, and a normal call is recorded afterwards; an INVITE flood above
 * capacity gets 503s while every accepted call is still recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, randomRtpRange, makeConfig, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient } from '../support/sip-client.js';
import { sampleMessage } from '../support/sample-replay.js';
import { mutationsOf, sendMutation, type Outcome } from '../support/fuzz.js';
import { multipart, offerSdp, rsMetadataDoc } from '../support/rs-metadata.js';
import { closeAll, sleep, startAll, tonesForAnswer } from '../support/legs.js';
import { storedEntries } from '../support/index-reader.js';
import { sampleNames } from '../unit/sip/samples.js';
import { firstHeader } from '../../src/sip/message.js';
import { tempDir } from '../support/cleanup.js';

function daemonConfig(extra: { sip?: string; rtp?: string; calls?: string }): { dir: string; configText: string } {
  const dir = tempDir('robust');
  let text = makeConfig(dir, randomRtpRange(400));
  if (extra.sip) text = text.replace('[sip]\n', `[sip]\n${extra.sip}\n`);
  if (extra.rtp) text = text.replace('[rtp]\n', `[rtp]\n${extra.rtp}\n`);
  if (extra.calls) text = text.replace('[calls]\n', `[calls]\n${extra.calls}\n`);
  return { dir, configText: text.replace('level = "debug"', 'level = "info"') };
}

async function metric(d: DaemonHandle, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m) sum += Number(m[2]);
  }
  return sum;
}

async function until(pred: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(200);
  }
  return pred();
}

const MD = rsMetadataDoc({
  participants: [
    { id: 'c', aor: 'sip:+358401234567@carrier.example', sends: ['s1'] },
    { id: 'a', aor: 'sip:1001@pbx.example', sends: ['s2'] },
  ],
  streams: [{ id: 's1', label: '1' }, { id: 's2', label: '2' }],
});

/** A normal two-leg SIPREC call of `ms`; resolves with the recording id. */
async function normalCall(d: DaemonHandle, ms: number): Promise<string> {
  const c = new SipTestClient('udp', d.udpPort);
  await c.open();
  const res = await c.invite({ ...multipart(offerSdp(['1', '2']), MD), headers: ['Require: siprec'] });
  expect(res.status).toBe(200);
  const legs = await tonesForAnswer(res.body.toString());
  startAll(legs);
  await sleep(ms);
  closeAll(legs);
  expect((await c.bye()).status).toBe(200);
  c.close();
  return c.callId;
}

describe('malformed messages and fuzzed samples', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    // Small message limit (a 20 kB header is over it); short inactivity timeout so that any
    // mutant call whose BYE could not be matched still ends within seconds.
    d = await startDaemon(daemonConfig({ sip: 'max_message_bytes = 16384', rtp: 'inactivity_timeout = "2s"' }));
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('refuses malformed SIP, SDP and XML with 400 and a reason, and counts them', async () => {
    const malformedBefore = await metric(d, 'tallenne_sip_malformed_total');
    const c = new SipTestClient('udp', d.udpPort);
    await c.open();
    // SIP: a header line without a colon, in an otherwise complete INVITE.
    const branch = 'z9hG4bKbadsip1';
    c.send([
      `INVITE sip:rec@127.0.0.1:${d.udpPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${c.localPort};branch=${branch}`,
      'From: <sip:a@127.0.0.1>;tag=1', `To: <sip:rec@127.0.0.1>`, 'Call-ID: bad-sip-1@127.0.0.1', 'CSeq: 1 INVITE',
      'This header has no colon', 'Content-Length: 0', '', '',
    ].join('\r\n'));
    const badSip = await c.waitFor((m) => m.kind === 'response' && firstHeader(m.headers, 'call-id') === 'bad-sip-1@127.0.0.1');
    expect(badSip.kind === 'response' && badSip.status).toBe(400);
    expect(firstHeader(badSip.headers, 'warning')).toMatch(/^399 tallenne ".+"$/);
    expect(await metric(d, 'tallenne_sip_malformed_total')).toBe(malformedBefore + 1);

    const rejectedBefore = await metric(d, 'tallenne_calls_rejected_total');
    const sdp = await new SipTestClient('udp', d.udpPort);
    await sdp.open();
    const r1 = await sdp.invite({ body: 'v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\nm=audio notaport RTP/AVP 0\r\n', contentType: 'application/sdp' });
    expect(r1.status).toBe(400);
    expect(firstHeader(r1.headers, 'warning')).toMatch(/bad port in m= line/);
    sdp.close();

    const xml = new SipTestClient('udp', d.udpPort);
    await xml.open();
    const r2 = await xml.invite({ ...multipart(offerSdp(['1', '2']), '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><participant>'), headers: ['Require: siprec'] });
    expect(r2.status).toBe(400);
    expect(firstHeader(r2.headers, 'warning')).toMatch(/not well-formed/);
    xml.close();
    c.close();
    expect(await metric(d, 'tallenne_calls_rejected_total')).toBe(rejectedBefore + 2);
  });

  it('survives every sample mutated, leaks no port, and records a normal call afterwards', async () => {
    const names = [...sampleNames('.sip'), ...sampleNames('.body')].filter((n) => !n.includes('reinvite'));
    const mutations = names.flatMap((name, i) => mutationsOf(sampleMessage(name, {
      serverPort: d.udpPort, localPort: 9, callId: `fuzz-${i}-@127.0.0.1`,
    }), 1000 + i, 16384).map((m) => ({ ...m, name: `${name}: ${m.name}` })));
    expect(mutations.length).toBeGreaterThan(100);
    const outcomes: Outcome[] = [];
    for (let i = 0; i < mutations.length; i += 20) {
      outcomes.push(...await Promise.all(mutations.slice(i, i + 20).map((m, k) => sendMutation(
        // Unique Call-IDs and Via branches: mutants of one sample must not look like
        // retransmissions of each other (the daemon would rightly repeat its first answer).
        { ...m, data: Buffer.from(m.data.toString('latin1').replace(/fuzz-(\d+)-@/g, `fuzz-$1-${i + k}@`).replace(/branch=z9hG4bK/g, `branch=z9hG4bK${i + k}x`), 'latin1') },
        d.udpPort, 1600,
      ))));
    }
    expect(d.proc.exitCode).toBeNull();
    for (const o of outcomes) {
      // A 500 would be an exception in a handler: never acceptable for bad input.
      expect(o.statuses.filter((s) => s === 500), o.mutation.name).toEqual([]);
      if (o.mutation.expectStatus !== undefined) expect(o.statuses, o.mutation.name).toEqual([o.mutation.expectStatus]);
    }
    // Some mutants are still good enough to record; most are refused.
    expect(outcomes.filter((o) => o.statuses.includes(400)).length).toBeGreaterThan(20);

    // Every call the mutants opened ends (BYE or the 2 s inactivity timeout): ports all back.
    expect(await until(async () => await metric(d, 'tallenne_active_calls') === 0, 15_000)).toBe(true);
    expect(await metric(d, 'tallenne_rtp_ports_in_use')).toBe(0);

    const callId = await normalCall(d, 1000);
    expect(await until(async () => (await storedEntries(join(d.dir, 'data'))).some((e) => e.callId === callId), 20_000)).toBe(true);
    expect(d.proc.exitCode).toBeNull();
  }, 90_000);
});

describe('an INVITE flood above capacity', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon(daemonConfig({ calls: 'max_concurrent = 4' }));
  });
  afterAll(async () => {
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('answers what fits, 503 with Retry-After to the rest, and records every accepted call', async () => {
    const clients = await Promise.all(Array.from({ length: 12 }, async () => {
      const c = new SipTestClient('udp', d.udpPort);
      await c.open();
      return c;
    }));
    const answers = await Promise.all(clients.map((c) => c.invite({ ...multipart(offerSdp(['1', '2']), MD), headers: ['Require: siprec'] })));
    const accepted = clients.filter((_, i) => answers[i]!.status === 200);
    const refused = answers.filter((a) => a.status === 503);
    expect(accepted).toHaveLength(4);
    expect(refused).toHaveLength(8);
    for (const r of refused) expect(Number(firstHeader(r.headers, 'retry-after'))).toBeGreaterThan(0);
    expect(await metric(d, 'tallenne_rtp_ports_in_use')).toBe(4 * 2 * 2);

    const legs = (await Promise.all(accepted.map((c) => tonesForAnswer(answers[clients.indexOf(c)]!.body.toString())))).flat();
    startAll(legs);
    await sleep(1000);
    closeAll(legs);
    for (const c of accepted) expect((await c.bye()).status).toBe(200);
    for (const c of clients) c.close();

    await d.waitForLog(() => d.logs.filter((l) => l.msg === 'recording stored').length >= 4, 30_000);
    const entries = await storedEntries(join(d.dir, 'data'));
    expect(entries.map((e) => e.callId).sort()).toEqual(accepted.map((c) => c.callId).sort());
    for (const e of entries) {
      expect(e.status).toBe('complete');
      expect(e.legs.every((l) => l.packets > 30)).toBe(true);
    }
    expect(await metric(d, 'tallenne_rtp_ports_in_use')).toBe(0);
    expect(await metric(d, 'tallenne_calls_rejected_total')).toBe(8);
  });
});
