/**
 * The user agent against a fake call handler, over real loopback sockets: transactions,
 * dialogs and the error answers a recorder gives.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SipUserAgent, type CallAnswer, type IncomingRequest, type SipCallHandler, type DialogEndReason } from '../../../src/sip/user-agent.js';
import { SipTestClient } from '../../support/sip-client.js';
import { firstHeader, type SipResponse } from '../../../src/sip/message.js';

class FakeHandler implements SipCallHandler {
  invites: IncomingRequest[] = [];
  updates: IncomingRequest[] = [];
  endedCalls: Array<[string, DialogEndReason]> = [];
  confirmedCalls: string[] = [];
  answer: CallAnswer = { status: 200, sdp: 'v=0\r\n' };
  delayMs = 0;
  async invite(req: IncomingRequest): Promise<CallAnswer> {
    this.invites.push(req);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return this.answer;
  }
  async update(req: IncomingRequest): Promise<CallAnswer> {
    this.updates.push(req);
    return { status: 200, sdp: 'v=0\r\n' };
  }
  confirmed(id: string): void {
    this.confirmedCalls.push(id);
  }
  ended(id: string, reason: DialogEndReason): void {
    this.endedCalls.push([id, reason]);
  }
}

let ua: SipUserAgent;
let handler: FakeHandler;
let udpPort: number;
let tcpPort: number;

beforeEach(async () => {
  handler = new FakeHandler();
  ua = new SipUserAgent([{ transport: 'udp', address: '127.0.0.1', port: 0 }, { transport: 'tcp', address: '127.0.0.1', port: 0 }], handler, {
    maxMessageBytes: 65535, userAgent: 'tallenne-test', log: pino({ level: 'silent' }),
  });
  const l = await ua.start();
  udpPort = l.find((x) => x.transport === 'udp')!.port;
  tcpPort = l.find((x) => x.transport === 'tcp')!.port;
});
afterEach(async () => {
  await ua.close();
});

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

describe.each(['udp', 'tcp'] as const)('SipUserAgent over %s', (transport) => {
  it('answers an INVITE with 100 then 200, confirms on ACK, and ends on BYE', async () => {
    const c = new SipTestClient(transport, transport === 'udp' ? udpPort : tcpPort);
    await c.open();
    const res = await c.invite({ body: SDP, contentType: 'application/sdp', headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    expect(c.received.some((m) => m.kind === 'response' && m.status === 100)).toBe(true);
    expect(firstHeader(res.headers, 'contact')).toMatch(/\+sip\.srs/);
    expect(firstHeader(res.headers, 'require')).toBe('siprec');
    expect(handler.invites[0]!.isSiprec).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(handler.confirmedCalls).toHaveLength(1);
    const bye = await c.bye();
    expect(bye.status).toBe(200);
    expect(handler.endedCalls).toEqual([[handler.invites[0]!.dialogId, 'bye']]);
    expect((await c.bye()).status).toBe(481);
    c.close();
  });
});

describe('SipUserAgent', () => {
  it('answers OPTIONS with its capabilities', async () => {
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    c.send(`OPTIONS sip:rec@127.0.0.1 SIP/2.0\r\nVia: ${c.via('z9hG4bKopt1')}\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: opt1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
    const res = (await c.waitFor((m) => m.kind === 'response')) as SipResponse;
    expect(res.status).toBe(200);
    expect(firstHeader(res.headers, 'allow')).toContain('INVITE');
    expect(firstHeader(res.headers, 'accept')).toContain('application/rs-metadata+xml');
    c.close();
  });

  it('answers a malformed request 400 with the reason and keeps running', async () => {
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    c.send(`INVITE sip:rec@127.0.0.1 SIP/2.0\r\nVia: ${c.via('z9hG4bKbad1')}\r\nFrom: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: bad1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n`);
    const res = (await c.waitFor((m) => m.kind === 'response')) as SipResponse;
    expect(res.status).toBe(400);
    expect(firstHeader(res.headers, 'warning')).toMatch(/CSeq method/);
    c.send('complete garbage\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    expect(ua.counters.malformed).toBe(2);
    const ok = await c.invite({ body: SDP, contentType: 'application/sdp' });
    expect(ok.status).toBe(200);
    c.close();
  });

  it('rejects an unsupported Require with 420', async () => {
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    const res = await c.invite({ body: SDP, contentType: 'application/sdp', headers: ['Require: 100rel'] });
    expect(res.status).toBe(420);
    expect(firstHeader(res.headers, 'unsupported')).toBe('100rel');
    expect(handler.invites).toHaveLength(0);
    c.close();
  });

  it('passes the handler\'s rejection with a Warning and Retry-After', async () => {
    handler.answer = { status: 503, warning: 'at capacity', retryAfterSeconds: 5 };
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    const res = await c.invite({ body: SDP, contentType: 'application/sdp' });
    expect(res.status).toBe(503);
    expect(firstHeader(res.headers, 'retry-after')).toBe('5');
    expect(firstHeader(res.headers, 'warning')).toContain('at capacity');
    c.close();
  });

  it('absorbs a retransmitted INVITE and repeats the 2xx until the ACK', async () => {
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    const branch = 'z9hG4bKretx';
    const invite = `INVITE sip:rec@127.0.0.1 SIP/2.0\r\nVia: ${c.via(branch)}\r\nFrom: <sip:p@127.0.0.1>;tag=9\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: retx1\r\nCSeq: 1 INVITE\r\nContact: <sip:p@127.0.0.1:${c.localPort}>\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`;
    handler.delayMs = 100;
    c.send(invite);
    c.send(invite);
    await c.waitFor((m) => m.kind === 'response' && m.status === 200);
    // No ACK: the 200 comes again after T1.
    await new Promise((r) => setTimeout(r, 1200));
    const oks = c.received.filter((m) => m.kind === 'response' && m.status === 200);
    expect(oks.length).toBeGreaterThanOrEqual(2);
    expect(handler.invites).toHaveLength(1);
    c.close();
  });

  it('answers CANCEL 200 and the INVITE 487 while the answer is pending', async () => {
    handler.delayMs = 300;
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    const branch = 'z9hG4bKcancel1';
    const common = `Via: ${c.via(branch)}\r\nFrom: <sip:p@127.0.0.1>;tag=7\r\nTo: <sip:rec@127.0.0.1>\r\nCall-ID: cancel1\r\n`;
    c.send(`INVITE sip:rec@127.0.0.1 SIP/2.0\r\n${common}CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`);
    await c.waitFor((m) => m.kind === 'response' && m.status === 100);
    c.send(`CANCEL sip:rec@127.0.0.1 SIP/2.0\r\n${common}CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n`);
    const cancelOk = (await c.waitFor((m) => m.kind === 'response' && firstHeader(m.headers, 'cseq') === '1 CANCEL')) as SipResponse;
    expect(cancelOk.status).toBe(200);
    const final = (await c.waitFor((m) => m.kind === 'response' && firstHeader(m.headers, 'cseq') === '1 INVITE' && m.status >= 200)) as SipResponse;
    expect(final.status).toBe(487);
    await new Promise((r) => setTimeout(r, 400));
    // The handler's late 200 is undone.
    expect(handler.endedCalls.map((e) => e[1])).toEqual(['cancel']);
    c.close();
  });

  it('sends a BYE when it hangs up, and the dialog ends', async () => {
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    await c.invite({ body: SDP, contentType: 'application/sdp' });
    ua.hangUp(handler.invites[0]!.dialogId);
    const bye = await c.waitFor((m) => m.kind === 'request' && m.method === 'BYE');
    expect(firstHeader(bye.headers, 'call-id')).toBe(c.callId);
    expect(handler.endedCalls[0]![1]).toBe('local');
    c.close();
  });

  it('refuses new INVITEs with 503 once it stops accepting', async () => {
    ua.stopAccepting();
    const c = new SipTestClient('udp', udpPort);
    await c.open();
    const res = await c.invite({ body: SDP, contentType: 'application/sdp' });
    expect(res.status).toBe(503);
    c.close();
  });
});
