/**
 * The user agent's side of the attack surface, through the fake transport and clock:
 * requests from outside allowed_sources (403 or dropped, before the handler sees anything),
 * the per-source INVITE rate (503 with Retry-After), a message with too many headers (400),
 * and Contact on TLS and for sips: Request-URIs.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SipUserAgent, type CallAnswer, type IncomingRequest, type SipCallHandler, type UserAgentOptions } from '../../../src/sip/user-agent.js';
import { firstHeader } from '../../../src/sip/message.js';
import { MAX_HEADERS } from '../../../src/sip/message.js';
import { RateLimiter } from '../../../src/sip/rate-limit.js';
import { SourcePolicy } from '../../../src/sip/source-policy.js';
import type { Flow } from '../../../src/sip/transport.js';
import { FakeClock, FakeTransport, settle } from './fakes.js';

const ANSWER_SDP = 'v=0\r\no=- 2 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

class Handler implements SipCallHandler {
  readonly invites: IncomingRequest[] = [];
  async invite(req: IncomingRequest): Promise<CallAnswer> {
    this.invites.push(req);
    return { status: 200, sdp: ANSWER_SDP };
  }
  async update(): Promise<CallAnswer> {
    return { status: 200 };
  }
  confirmed(): void {}
  ended(): void {}
}

let n = 0;
function invite(flow: Flow, opts: { uri?: string; extraHeaders?: string[] } = {}): string {
  const i = ++n;
  return [
    `INVITE ${opts.uri ?? 'sip:rec@192.0.2.10:5060'} SIP/2.0`,
    `Via: SIP/2.0/${flow.transport} ${flow.remote.address}:${flow.remote.port};branch=z9hG4bKlim${i}`,
    `From: <sip:src@${flow.remote.address}>;tag=f${i}`,
    'To: <sip:rec@192.0.2.10>',
    `Call-ID: limits-${i}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:src@${flow.remote.address}:${flow.remote.port}>`,
    ...(opts.extraHeaders ?? []),
    'Content-Length: 0',
    '', '',
  ].join('\r\n');
}

let clock: FakeClock;
let transport: FakeTransport;
let handler: Handler;

async function start(opts: Partial<UserAgentOptions> = {}): Promise<SipUserAgent> {
  clock = new FakeClock();
  transport = new FakeTransport();
  handler = new Handler();
  const ua = new SipUserAgent(transport, clock, handler, { maxMessageBytes: 65_535, userAgent: 'tallenne-test', log: pino({ level: 'silent' }), ...opts });
  await ua.start();
  return ua;
}

const finals = () => transport.responses().filter((r) => r.status >= 200);

describe('allowed_sources', () => {
  it('answers a request from an unlisted source 403, counts it, and the handler never sees it', async () => {
    const ua = await start({ sources: new SourcePolicy(['198.51.100.0/24']) });
    transport.deliver(invite(transport.flow()), transport.flow());
    await settle();
    expect(finals().map((r) => r.status)).toEqual([403]);
    expect(transport.responses().map((r) => r.status)).toEqual([403]);
    expect(firstHeader(finals()[0]!.headers, 'warning')).toContain('source address not allowed');
    expect(handler.invites).toEqual([]);
    expect(ua.counters.refused.source).toBe(1);
    expect(ua.counters.requests).toEqual({});
    expect(ua.dialogCount).toBe(0);
    expect(clock.armed).toBe(0);
  });

  it('drops it without an answer when unlisted_sources is "drop", and drops even unparseable bytes', async () => {
    const ua = await start({ sources: new SourcePolicy(['198.51.100.0/24']), unlistedSources: 'drop' });
    transport.deliver(invite(transport.flow()), transport.flow());
    transport.deliver('garbage\r\n\r\n', transport.flow());
    await settle();
    expect(transport.sent).toEqual([]);
    expect(handler.invites).toEqual([]);
    expect(ua.counters.refused.source).toBe(2);
    expect(ua.counters.malformed).toBe(0);
  });

  it('lets a listed source in', async () => {
    const ua = await start({ sources: new SourcePolicy(['192.0.2.0/24']) });
    transport.deliver(invite(transport.flow()), transport.flow());
    await settle();
    expect(finals().map((r) => r.status)).toEqual([200]);
    expect(ua.counters.refused.source).toBe(0);
  });
});

describe('the INVITE rate per source', () => {
  it('answers INVITEs beyond the burst 503 with Retry-After until tokens come back', async () => {
    const time = { now: 0 };
    const ua = await start({ inviteLimiter: new RateLimiter(0.5, 2, () => time.now) });
    const flow = transport.flow();
    for (let i = 0; i < 3; i++) transport.deliver(invite(flow), flow);
    await settle();
    // The 503 goes at once; the 200s when the handler has answered.
    expect(finals().map((r) => r.status).sort()).toEqual([200, 200, 503]);
    const refused = finals().find((r) => r.status === 503)!;
    expect(firstHeader(refused.headers, 'retry-after')).toBe('2');
    expect(ua.counters.refused.invite_rate).toBe(1);
    expect(handler.invites).toHaveLength(2);
    // Another source has its own bucket.
    const other = transport.flowTo('UDP', { address: '192.0.2.99', port: 5060 });
    transport.deliver(invite(other), other);
    // Two seconds later the first source has a token again.
    time.now += 2000;
    transport.deliver(invite(flow), flow);
    await settle();
    expect(finals().map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 503]);
    expect(ua.counters.refused.invite_rate).toBe(1);
  });

  it('does not charge retransmissions of an INVITE', async () => {
    const time = { now: 0 };
    const ua = await start({ inviteLimiter: new RateLimiter(1, 1, () => time.now) });
    const flow = transport.flow();
    const text = invite(flow);
    for (let i = 0; i < 4; i++) transport.deliver(text, flow);
    await settle();
    expect(ua.counters.refused.invite_rate).toBe(0);
    expect(handler.invites).toHaveLength(1);
  });
});

describe('header limit', () => {
  it(`answers a request with more than ${MAX_HEADERS} headers 400 instead of dropping it`, async () => {
    const ua = await start();
    const many = Array.from({ length: MAX_HEADERS }, (_, i) => `X-Filler-${i}: ${i}`);
    transport.deliver(invite(transport.flow(), { extraHeaders: many }), transport.flow());
    await settle();
    expect(finals().map((r) => r.status)).toEqual([400]);
    expect(firstHeader(finals()[0]!.headers, 'warning')).toContain(`more than ${MAX_HEADERS} headers`);
    expect(handler.invites).toEqual([]);
    expect(ua.counters.malformed).toBe(1);
  });
});

describe('Contact on TLS and for sips:', () => {
  it.each([
    ['UDP', 'sip:rec@192.0.2.10:5060', '<sip:tallenne@192.0.2.10:5060>'],
    ['TCP', 'sip:rec@192.0.2.10:5060', '<sip:tallenne@192.0.2.10:5060;transport=tcp>'],
    ['TLS', 'sip:rec@192.0.2.10:5061', '<sip:tallenne@192.0.2.10:5060;transport=tls>'],
    ['TLS', 'sips:rec@192.0.2.10:5061', '<sips:tallenne@192.0.2.10:5060;transport=tls>'],
  ] as const)('%s, Request-URI %s → %s', async (t, uri, contact) => {
    await start();
    const flow = transport.flow(t);
    transport.deliver(invite(flow, { uri }), flow);
    await settle();
    const ok = finals()[0]!;
    expect(ok.status).toBe(200);
    expect(firstHeader(ok.headers, 'contact')).toBe(contact);
    expect(handler.invites[0]!.transport).toBe(t);
    expect(handler.invites[0]!.requestUri).toBe(uri);
  });

  it('sends its BYE on the TLS flow with a TLS Via', async () => {
    const ua = await start();
    const flow = transport.flow('TLS');
    transport.deliver(invite(flow, { uri: 'sips:rec@192.0.2.10:5061' }), flow);
    await settle();
    const id = handler.invites[0]!.dialogId;
    ua.hangUp(id);
    const bye = transport.requests('BYE')[0]!;
    expect(firstHeader(bye.headers, 'via')).toMatch(/^SIP\/2\.0\/TLS /);
    expect(transport.sent.find((s) => s.message === bye)!.flow.transport).toBe('TLS');
  });
});

beforeEach(() => {
  n = 0;
});
