import { describe, it, expect } from 'vitest';
import { parseContentType, parseMultipart } from '../../../src/sip/multipart.js';
import { ProtocolError } from '../../../src/errors.js';
import { readSample, BODY_BOUNDARIES } from './samples.js';

const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));

function malformed(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe('TALLENNE_SIP_MALFORMED');
    expect((e as ProtocolError).status).toBe(400);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('parseContentType', () => {
  it('reads type, quoted and unquoted params', () => {
    expect(parseContentType('Multipart/Mixed; Boundary="a;b c"; x=1')).toEqual({
      type: 'multipart/mixed',
      params: { boundary: 'a;b c', x: '1' },
    });
  });
  it('rejects a damaged media type', () => {
    expect(malformed(() => parseContentType('application/ +xml')).message).toMatch(/malformed Content-Type/);
    malformed(() => parseContentType('application'));
    malformed(() => parseContentType('/sdp'));
    malformed(() => parseContentType('application/sdp; =x'));
  });
});

describe('parseMultipart', () => {
  it('splits the Cisco CUBE body: 3 parts, disposition before type, no closing delimiter', () => {
    const parts = parseMultipart('multipart/mixed;boundary=uniqueBoundary', readSample('drachtio-cisco-cube.body'));
    expect(parts.map((p) => p.contentType)).toEqual(['application/sdp', 'application/rs-metadata+xml', 'application/gtd']);
    expect(parts[0]!.headers['content-disposition']).toBe('session;handling=required');
    expect(parts[0]!.body.toString().startsWith('v=0\r\n')).toBe(true);
    expect(parts[0]!.body.toString().endsWith('a=label:2\r\n')).toBe(true);
    expect(parts[1]!.body.toString().trim().endsWith('</recording>')).toBe(true);
    expect(parts[2]!.body.toString()).toContain('GCI,91036128574411e789f9d0ff56c3c658');
  });

  it('accepts the Acme closing delimiter with a trailing space', () => {
    const parts = parseMultipart('multipart/mixed; boundary=unique-boundary-1', readSample('drachtio-acme-oracle-sbc.body'));
    expect(parts).toHaveLength(2);
    expect(parts[1]!.body.toString().endsWith('</recording>')).toBe(true);
  });

  it('parts are views into the body, not copies', () => {
    const body = readSample('drachtio-avaya-sbce-style.body');
    const parts = parseMultipart('multipart/mixed;boundary=foobar', body);
    expect(parts[0]!.body.buffer).toBe(body.buffer);
  });

  it('handles folded headers, no space after colon, bare LF, quoted boundary, preamble', () => {
    const body = Buffer.from(
      'preamble text\n  \n--b;x\nContent-Type:application/sdp\nX-Long: one\n two\n\nv=0\n--b;x\ncontent-type: Application/RS-Metadata\n\n<recording/>\n--b;x--\nepilogue',
    );
    const parts = parseMultipart('multipart/mixed; boundary="b;x"', body);
    expect(parts).toHaveLength(2);
    expect(parts[0]!.contentType).toBe('application/sdp');
    expect(parts[0]!.headers['x-long']).toBe('one two');
    expect(parts[0]!.body.toString()).toBe('v=0');
    expect(parts[1]!.contentType).toBe('application/rs-metadata');
    expect(parts[1]!.body.toString()).toBe('<recording/>');
  });

  it('does not take a longer boundary-like line for a delimiter', () => {
    const body = crlf('--ab\nContent-Type: text/plain\n\nline\n--abc\nmore\n--ab--\n');
    const parts = parseMultipart('multipart/mixed;boundary=ab', body);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.body.toString()).toBe('line\r\n--abc\r\nmore');
  });

  it('defaults a part without Content-Type to text/plain', () => {
    const parts = parseMultipart('multipart/mixed;boundary=q', crlf('--q\n\nhello\n--q--\n'));
    expect(parts[0]!.contentType).toBe('text/plain');
    expect(parts[0]!.body.toString()).toBe('hello');
  });

  it('rejects the damaged BroadWorks part type "application/ +xml"', () => {
    const name = 'drachtio-broadworks-mangled.body';
    const e = malformed(() => parseMultipart(`multipart/mixed;boundary=${BODY_BOUNDARIES[name]}`, readSample(name)));
    expect(e.message).toMatch(/part 1: .*application\/ \+xml/);
  });

  it('rejects bodies it cannot split', () => {
    malformed(() => parseMultipart('application/sdp', crlf('v=0\n')));
    malformed(() => parseMultipart('multipart/mixed', crlf('--x\n\nv=0\n')));
    malformed(() => parseMultipart('multipart/mixed;boundary=zz', crlf('--x\n\nv=0\n--x--\n')));
    malformed(() => parseMultipart('multipart/mixed;boundary=zz', crlf('--zz--\n')));
    malformed(() => parseMultipart('multipart/mixed;boundary=zz', crlf('--zz\nbroken header line\n\nv=0\n--zz--\n')));
    malformed(() => parseMultipart('multipart/mixed;boundary=zz', crlf('--zz\n continuation first\n\nv=0\n--zz--\n')));
    const many = Array.from({ length: 20 }, () => '--zz\n\nx\n').join('') + '--zz--\n';
    expect(malformed(() => parseMultipart('multipart/mixed;boundary=zz', crlf(many))).message).toMatch(/too many parts/);
    const big = Buffer.alloc(2 * 1024 * 1024, 0x61);
    expect(malformed(() => parseMultipart('multipart/mixed;boundary=zz', big)).message).toMatch(/too large/);
  });
});
