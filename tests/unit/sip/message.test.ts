import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  buildResponse, firstHeader, parseCSeq, parseNameAddr, parseSipMessage, parseVia, SipParseError, splitList, tokenList, uriUser,
  type SipRequest,
} from '../../../src/sip/message.js';

const SAMPLES = new URL('../../../../shared/siprec-samples/', import.meta.url);
const INVITE = [
  'INVITE sip:rec@127.0.0.1:5060 SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport',
  'Max-Forwards: 70',
  'From: "Caller" <sip:+358401234567@127.0.0.1>;tag=111',
  'To: <sip:rec@127.0.0.1>',
  'Call-ID: c1@127.0.0.1',
  'CSeq: 1 INVITE',
  'Content-Type: application/sdp',
  'Content-Length: 4',
  '',
  'v=0\r\n',
].join('\r\n');

describe('parseSipMessage', () => {
  it('parses a request with its body bounded by Content-Length', () => {
    const m = parseSipMessage(Buffer.from(INVITE)) as SipRequest;
    expect(m.kind).toBe('request');
    expect(m.method).toBe('INVITE');
    expect(m.uri).toBe('sip:rec@127.0.0.1:5060');
    expect(m.body.toString()).toBe('v=0\r');
    expect(firstHeader(m.headers, 'call-id')).toBe('c1@127.0.0.1');
  });

  it('parses every .sip sample: folded headers, no space after colons, compact forms', () => {
    for (const name of ['miarec-avaya-sbce-invite.sip', 'miarec-broadworks-invite.sip', 'miarec-broadworks-reinvite-pause.sip', 'miarec-metaswitch-invite.sip', 'miarec-oracle-sbc-invite.sip', 'rfc7866-invite-example.sip', 'rfc7866-reinvite-hold-partial.sip']) {
      const m = parseSipMessage(readFileSync(new URL(name, SAMPLES))) as SipRequest;
      expect(m.kind, name).toBe('request');
      expect(m.method, name).toBe('INVITE');
      expect(m.body.length, name).toBeGreaterThan(0);
      expect(firstHeader(m.headers, 'content-type'), name).toBeDefined();
    }
    const rfc = parseSipMessage(readFileSync(new URL('rfc7866-invite-example.sip', SAMPLES))) as SipRequest;
    // Session-ID is folded over two lines in the sample.
    expect(firstHeader(rfc.headers, 'session-id')).not.toContain('\r\n');
    const bw = parseSipMessage(readFileSync(new URL('miarec-broadworks-invite.sip', SAMPLES))) as SipRequest;
    expect(firstHeader(bw.headers, 'content-type')).toMatch(/^multipart\/mixed/);
    expect(firstHeader(bw.headers, 'recv-info')).toBe('');
  });

  it('expands compact header names', () => {
    const m = parseSipMessage(Buffer.from(INVITE.replace('Call-ID:', 'i:').replace('Content-Type:', 'c:').replace('Via:', 'v:')));
    expect(firstHeader(m.headers, 'call-id')).toBe('c1@127.0.0.1');
    expect(firstHeader(m.headers, 'via')).toContain('z9hG4bKabc');
  });

  it('parses responses', () => {
    const m = parseSipMessage(Buffer.from('SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n'));
    expect(m).toMatchObject({ kind: 'response', status: 180, reason: 'Ringing' });
  });

  it('rejects malformed messages with a reason, keeping what a 400 needs', () => {
    const missing = INVITE.replace('Call-ID: c1@127.0.0.1\r\n', '');
    expect(() => parseSipMessage(Buffer.from(missing))).toThrow(/missing call-id/);
    const badCseq = INVITE.replace('CSeq: 1 INVITE', 'CSeq: 1 BYE');
    try {
      parseSipMessage(Buffer.from(badCseq));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SipParseError);
      expect((e as SipParseError).status).toBe(400);
      expect((e as SipParseError).partial?.method).toBe('INVITE');
    }
    expect(() => parseSipMessage(Buffer.from('hello world'))).toThrow(/no blank line/);
    expect(() => parseSipMessage(Buffer.from('GARBAGE\r\n\r\n'))).toThrow(/bad start line/);
    expect(() => parseSipMessage(Buffer.from(INVITE.replace('Content-Length: 4', 'Content-Length: 400')))).toThrow(/larger than/);
    expect(() => parseSipMessage(Buffer.alloc(70_000, 0x41))).toThrow(/exceeds/);
  });

  it('never throws anything but SipParseError on random and mutated input', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const base = Buffer.from(INVITE);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(base.subarray(0, Math.floor(rnd() * base.length) + 1));
      for (let j = 0; j < 3; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        parseSipMessage(b);
      } catch (e) {
        expect(e).toBeInstanceOf(SipParseError);
      }
    }
  });
});

describe('header values', () => {
  it('parses Via with IPv4, IPv6 and parameters', () => {
    expect(parseVia('SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport')).toEqual({ transport: 'UDP', host: '10.0.0.1', port: 5060, params: { branch: 'z9hG4bK1', rport: null } });
    expect(parseVia('SIP/2.0/TCP [::1]:5070;branch=z9hG4bK2')).toMatchObject({ host: '::1', port: 5070, params: { branch: 'z9hG4bK2' } });
    expect(parseVia('SIP/2.0/UDP host.example, SIP/2.0/UDP other').host).toBe('host.example');
    expect(() => parseVia('nonsense')).toThrow();
  });

  it('parses name-addr and addr-spec forms', () => {
    expect(parseNameAddr('"VVX 600"<sip:2001@10.0.0.10;user=phone>;tag=abc')).toEqual({ displayName: 'VVX 600', uri: 'sip:2001@10.0.0.10;user=phone', params: { tag: 'abc' } });
    expect(parseNameAddr('sip:a@b;tag=x')).toEqual({ uri: 'sip:a@b', params: { tag: 'x' } });
    expect(parseNameAddr('Bob <sips:bob@[::1]:5061>')).toMatchObject({ displayName: 'Bob', uri: 'sips:bob@[::1]:5061' });
  });

  it('parses CSeq, lists and URI users', () => {
    expect(parseCSeq('101 invite')).toEqual({ seq: 101, method: 'INVITE' });
    expect(() => parseCSeq('x INVITE')).toThrow();
    expect(splitList('<sip:a@b;x=1,2>, "c,d" <sip:e@f>')).toEqual(['<sip:a@b;x=1,2>', '"c,d" <sip:e@f>']);
    expect(uriUser('sip:+358401234567@host;user=phone')).toBe('+358401234567');
    expect(uriUser('tel:+358401234567')).toBe('+358401234567');
    expect(uriUser('sip:host.example')).toBe('host.example');
    const m = parseSipMessage(Buffer.from(INVITE.replace('Max-Forwards: 70', 'Require: siprec\r\nRequire: Timer, 100rel'))) as SipRequest;
    expect(tokenList(m.headers, 'require')).toEqual(['siprec', 'timer', '100rel']);
  });
});

describe('buildResponse', () => {
  it('copies Via, From, Call-ID, CSeq and tags To', () => {
    const req = parseSipMessage(Buffer.from(INVITE)) as SipRequest;
    const res = parseSipMessage(buildResponse(req, 200, 'OK', { toTag: 'srs1', headers: [{ name: 'content-type', value: 'application/sdp' }], body: 'v=0\r\n' }));
    expect(res.kind).toBe('response');
    expect(firstHeader(res.headers, 'to')).toBe('<sip:rec@127.0.0.1>;tag=srs1');
    expect(firstHeader(res.headers, 'via')).toBe('SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport');
    expect(firstHeader(res.headers, 'content-length')).toBe('5');
    expect(res.body.toString()).toBe('v=0\r\n');
  });
});
