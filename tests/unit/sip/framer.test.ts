/**
 * The stream framer over raw bytes: messages split at every byte and in pieces, several in
 * one chunk, every kind of Content-Length lie, keep-alives, and the size limits.
 */
import { describe, expect, it } from 'vitest';
import { isKeepAlive, StreamFramer, type Frame } from '../../../src/sip/framer.js';

function message(body = '', extra: string[] = [], contentLength: string | null = String(Buffer.byteLength(body))): string {
  return [
    'OPTIONS sip:rec@192.0.2.10 SIP/2.0',
    'Via: SIP/2.0/TCP 192.0.2.20:5070;branch=z9hG4bKf1',
    'From: <sip:src@192.0.2.20>;tag=1',
    'To: <sip:rec@192.0.2.10>',
    'Call-ID: framer-1',
    'CSeq: 1 OPTIONS',
    ...extra,
    ...(contentLength === null ? [] : [`Content-Length: ${contentLength}`]),
    '', '',
  ].join('\r\n') + body;
}

const BODY = 'v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\n';
const B = (s: string) => Buffer.from(s, 'latin1');
const texts = (frames: Frame[]) => frames.map((f) => (f.kind === 'message' ? f.data.toString('latin1') : 'PING'));

describe('StreamFramer', () => {
  it('frames a message that arrives byte by byte', () => {
    const f = new StreamFramer(65_535);
    const text = message(BODY);
    const out: Frame[] = [];
    for (let i = 0; i < text.length; i++) {
      const r = f.push(B(text[i]!));
      expect(r.error).toBeUndefined();
      out.push(...r.frames);
      if (i < text.length - 1) expect(out).toEqual([]);
    }
    expect(texts(out)).toEqual([text]);
    expect(f.buffered).toBe(0);
  });

  it('frames a message split at every possible point', () => {
    const text = message(BODY);
    for (let cut = 1; cut < text.length; cut++) {
      const f = new StreamFramer(65_535);
      const a = f.push(B(text.slice(0, cut)));
      const b = f.push(B(text.slice(cut)));
      expect([...texts(a.frames), ...texts(b.frames)], `cut at ${cut}`).toEqual([text]);
    }
  });

  it('does not mistake a blank line inside the body for the end of the headers', () => {
    const body = 'part one\r\n\r\npart two';
    const text = message(body);
    const f = new StreamFramer(65_535);
    const a = f.push(B(text.slice(0, text.length - 5)));
    expect(a.frames).toEqual([]);
    expect(texts(f.push(B(text.slice(text.length - 5))).frames)).toEqual([text]);
  });

  it('splits several messages coalesced in one chunk, and a third one cut across chunks', () => {
    const one = message(BODY);
    const two = message('', ['Supported: timer']);
    const three = message(BODY, ['Subject: three']);
    const f = new StreamFramer(65_535);
    const r = f.push(B(one + two + three.slice(0, 40)));
    expect(texts(r.frames)).toEqual([one, two]);
    expect(texts(f.push(B(three.slice(40))).frames)).toEqual([three]);
  });

  it('reads the compact form and any case of Content-Length', () => {
    const f = new StreamFramer(65_535);
    const text = message(BODY, [`l: ${BODY.length}`], null);
    const lower = message(BODY, [`content-LENGTH:${BODY.length}`], null);
    expect(texts(f.push(B(text + lower)).frames)).toEqual([text, lower]);
  });

  it('waits for a body when Content-Length is larger than what has come', () => {
    const f = new StreamFramer(65_535);
    const text = message(BODY, [], String(BODY.length + 10));
    const r = f.push(B(text));
    expect(r).toEqual({ frames: [] });
    expect(f.buffered).toBe(text.length);
    expect(texts(f.push(B('0123456789')).frames)).toEqual([text + '0123456789']);
  });

  it('closes the stream when Content-Length is smaller than the body (the rest is no message)', () => {
    const f = new StreamFramer(65_535);
    const text = message(BODY, [], '5');
    const r = f.push(B(text));
    expect(texts(r.frames)).toEqual([text.slice(0, text.length - BODY.length + 5)]);
    expect(r.error).toBe('bytes that do not start a SIP message');
    // Dead from now on, even for a good message.
    expect(f.push(B(message()))).toEqual({ frames: [], error: 'bytes that do not start a SIP message' });
  });

  it.each([
    ['missing', null, 'no Content-Length on a stream transport'],
    ['non-numeric', 'twelve', 'unreadable Content-Length "twelve"'],
    ['negative', '-1', 'unreadable Content-Length "-1"'],
    ['empty', '', 'unreadable Content-Length ""'],
    ['ten digits', '1234567890', 'unreadable Content-Length "1234567890"'],
  ])('refuses a %s Content-Length', (_, value, error) => {
    const f = new StreamFramer(65_535);
    const r = f.push(B(message('', [], value)));
    expect(r).toEqual({ frames: [], error });
  });

  it('refuses two Content-Length headers that disagree', () => {
    const f = new StreamFramer(65_535);
    expect(f.push(B(message('', ['Content-Length: 7']))).error).toBe('conflicting Content-Length headers');
    const same = message('', ['Content-Length: 0']);
    expect(texts(new StreamFramer(65_535).push(B(same)).frames)).toEqual([same]);
  });

  it('reports CRLFCRLF keep-alives as pings, even split, and skips lone CRLFs', () => {
    const f = new StreamFramer(65_535);
    const text = message();
    expect(texts(f.push(B('\r\n\r\n')).frames)).toEqual(['PING']);
    expect(texts(f.push(B('\r\n')).frames)).toEqual([]);
    expect(texts(f.push(B('\r\n' + text + '\r\n')).frames)).toEqual(['PING', text]);
    expect(texts(f.push(B(text)).frames)).toEqual([text]);
    expect(texts(f.push(B('\r')).frames)).toEqual([]);
    expect(texts(f.push(B('\n\r\n\r\n' + text)).frames)).toEqual(['PING', text]);
    // A CRLF alone may be the start of a ping: it waits for what follows.
    expect(texts(f.push(B('\r\n')).frames)).toEqual([]);
    expect(f.buffered).toBe(2);
  });

  it('refuses bytes that do not start a SIP message', () => {
    expect(new StreamFramer(65_535).push(B('GET / HTTP/1.1\r\nHost: x\r\n\r\n')).error).toBe('bytes that do not start a SIP message');
    expect(new StreamFramer(65_535).push(B('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n')).error).toBe('bytes that do not start a SIP message');
    expect(new StreamFramer(65_535).push(B('x'.repeat(9000))).error).toBe('start line too long');
  });

  it('accepts responses as well as requests', () => {
    const res = 'SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKb\r\nContent-Length: 0\r\n\r\n';
    expect(texts(new StreamFramer(65_535).push(B(res)).frames)).toEqual([res]);
  });

  it('holds at most the size limit: headers or a declared body beyond it close the stream', () => {
    const limit = 1024;
    const headersTooLong = new StreamFramer(limit);
    const head = message('', ['X-Pad: ' + 'a'.repeat(2000)]);
    const r = headersTooLong.push(B(head.slice(0, 1500)));
    expect(r.error).toBe('headers exceed the 1024-byte message limit');
    expect(headersTooLong.buffered).toBe(0);

    const declared = new StreamFramer(limit);
    const big = message('', [], '5000');
    expect(declared.push(B(big)).error).toMatch(/^message of \d+ bytes exceeds the 1024-byte limit$/);

    const fits = new StreamFramer(limit);
    const body = 'b'.repeat(limit - message('', [], '000').length);
    const exact = message(body);
    expect(exact.length).toBe(limit);
    expect(texts(fits.push(B(exact)).frames)).toEqual([exact]);
  });
});

describe('isKeepAlive', () => {
  it('recognises CRLF-only datagrams', () => {
    expect(isKeepAlive(B('\r\n\r\n'))).toBe(true);
    expect(isKeepAlive(B('\r\n'))).toBe(true);
    expect(isKeepAlive(B(''))).toBe(true);
    expect(isKeepAlive(B('\r\nOPTIONS'))).toBe(false);
  });
});
