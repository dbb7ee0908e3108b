/**
 * Responses built from their fields: each header present exactly when its field is set, and
 * Content-Type only with a body.
 */
import { describe, expect, it } from 'vitest';
import { encodeResponse, reasonPhrase } from '../../../src/sip/response.js';
import { parseSipMessage, type SipRequest, type SipResponse } from '../../../src/sip/message.js';

const REQUEST = parseSipMessage(Buffer.from([
  'UPDATE sip:rec@192.0.2.10 SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.20:5070;branch=z9hG4bKr1',
  'Record-Route: <sip:proxy.example;lr>',
  'From: <sip:src@192.0.2.20>;tag=a',
  'To: <sip:rec@192.0.2.10>',
  'Call-ID: resp-1',
  'CSeq: 2 UPDATE',
  'Subject: not copied',
  'Content-Length: 0', '', '',
].join('\r\n'), 'latin1')) as SipRequest;

const parse = (b: Buffer) => parseSipMessage(b) as SipResponse;
const names = (r: SipResponse) => r.headers.map((h) => h.name);

describe('encodeResponse', () => {
  it('copies what §8.2.6 says, adds our tag, and sets only the fields given', () => {
    const r = parse(encodeResponse(REQUEST, { status: 481, toTag: 'ours', server: 'tallenne' }));
    expect(r.status).toBe(481);
    expect(r.reason).toBe('Call/Transaction Does Not Exist');
    expect(names(r)).toEqual(['via', 'record-route', 'from', 'to', 'call-id', 'cseq', 'server', 'content-length']);
    expect(r.headers.find((h) => h.name === 'to')!.value).toBe('<sip:rec@192.0.2.10>;tag=ours');
  });

  it('writes a 2xx with every field in a fixed order, the body with its type', () => {
    const r = parse(encodeResponse(REQUEST, {
      status: 200, toTag: 't', server: 'tallenne', contact: '<sip:tallenne@192.0.2.10:5060>;+sip.srs',
      allow: ['INVITE', 'BYE'], accept: ['application/sdp'], supported: ['timer'], require: ['siprec', 'timer'],
      sessionExpires: { seconds: 1800, refresher: 'uac' }, body: { contentType: 'application/sdp', content: 'v=0\r\n' },
    }));
    expect(names(r).slice(6)).toEqual(['server', 'contact', 'allow', 'accept', 'supported', 'require', 'session-expires', 'content-type', 'content-length']);
    const h = Object.fromEntries(r.headers.map((x) => [x.name, x.value]));
    expect(h).toMatchObject({ allow: 'INVITE, BYE', require: 'siprec, timer', 'session-expires': '1800;refresher=uac', 'content-type': 'application/sdp', 'content-length': '5' });
    expect(r.body.toString()).toBe('v=0\r\n');
  });

  it('never writes Content-Type without a body, whatever else the response carries', () => {
    const r = parse(encodeResponse(REQUEST, {
      status: 200, server: 'tallenne', contact: '<sip:tallenne@192.0.2.10:5060>', require: ['timer'],
      sessionExpires: { seconds: 90, refresher: 'uac' },
    }));
    expect(names(r)).not.toContain('content-type');
    expect(names(r)).toContain('session-expires');
    expect(names(r)).toContain('require');
    expect(r.body.length).toBe(0);
  });

  it('leaves out empty lists and writes rejections with Warning, Retry-After and Unsupported', () => {
    const r = parse(encodeResponse(REQUEST, {
      status: 420, server: 'tallenne', require: [], unsupported: ['100rel', 'foo'], warning: 'say "no"\r\nplease', retryAfterSeconds: 0,
    }));
    const h = Object.fromEntries(r.headers.map((x) => [x.name, x.value]));
    expect(h.require).toBeUndefined();
    expect(h.unsupported).toBe('100rel, foo');
    expect(h.warning).toBe('399 tallenne "say  no   please"');
    expect(h['retry-after']).toBe('0');
  });

  it('keeps a tag already in To, and puts none on a 100', () => {
    const inDialog = parseSipMessage(Buffer.from(REQUEST.headers.map((x) => x.name === 'to' ? `To: ${x.value};tag=theirs` : `${x.name}: ${x.value}`).reduce((a, l) => a + l + '\r\n', 'INVITE sip:rec@192.0.2.10 SIP/2.0\r\n').replace('2 UPDATE', '2 INVITE') + '\r\n', 'latin1')) as SipRequest;
    const to = (b: Buffer) => parse(b).headers.find((x) => x.name === 'to')!.value;
    expect(to(encodeResponse(inDialog, { status: 200, toTag: 'ours', server: 's' }))).toBe('<sip:rec@192.0.2.10>;tag=theirs');
    expect(to(encodeResponse(REQUEST, { status: 100, toTag: 'ours', server: 's' }))).toBe('<sip:rec@192.0.2.10>');
  });

  it('uses the reason given, or the standard phrase', () => {
    expect(parse(encodeResponse(REQUEST, { status: 486, reason: 'Busy Recording', server: 's' })).reason).toBe('Busy Recording');
    expect(reasonPhrase(487)).toBe('Request Terminated');
    expect(reasonPhrase(299)).toBe('OK');
    expect(reasonPhrase(599)).toBe('Error');
  });
});
