/**
 * SIP messages (RFC 3261 §7, §20) mutated by structure: the start line, headers duplicated,
 * dropped, folded, made huge or numerous, compact and odd-cased names, odd separators,
 * missing or lying Content-Length, broken Via/From/To/CSeq values, and the body replaced by
 * a mutated multipart, SDP or rs-metadata body with its length kept right or wrong.
 */
import type { Rng } from '../rng.js';
import type { Corpus } from '../seeds.js';
import { mutateLines, mutateNumber } from '../mutate.js';
import { mutateMultipart } from './multipart.js';
import { mutateSdp } from './sdp.js';
import { mutateXml } from './xml.js';

const SEP = '\r\n\r\n';

interface Parts {
  start: string;
  headers: string[];
  body: Buffer;
}

function split(msg: Buffer): Parts {
  const at = msg.indexOf(SEP);
  const head = msg.toString('latin1', 0, at < 0 ? msg.length : at);
  const lines = head.split('\r\n');
  return { start: lines[0] ?? '', headers: lines.slice(1), body: at < 0 ? Buffer.alloc(0) : msg.subarray(at + 4) };
}

function join(p: Parts, sep = SEP): Buffer {
  return Buffer.concat([Buffer.from([p.start, ...p.headers].join('\r\n') + sep, 'latin1'), p.body]);
}

function headerIndex(p: Parts, names: RegExp): number {
  return p.headers.findIndex((h) => names.test(h));
}

const CONTENT_LENGTH = /^(content-length|l)[ \t]*:/i;

function setContentLength(p: Parts, value: string): void {
  const i = headerIndex(p, CONTENT_LENGTH);
  if (i >= 0) p.headers[i] = `Content-Length: ${value}`;
  else p.headers.push(`Content-Length: ${value}`);
}

const START_LINES = [
  'INVITE sip:srs@127.0.0.1 SIP/2.0', 'invite sip:srs@127.0.0.1 SIP/2.0', 'INVITE  sip:srs@127.0.0.1 SIP/2.0', 'INVITE sip:srs@127.0.0.1 SIP/3.0',
  'INVITE sip:srs@127.0.0.1 SIP/2.0 ', 'INVITE sip:[::1 SIP/2.0', 'INVITE sips:srs@[::1]:5061;transport=tls SIP/2.0', 'OPTIONS sip:srs@127.0.0.1 SIP/2.0',
  'BYE sip:srs@127.0.0.1 SIP/2.0', 'ACK sip:srs@127.0.0.1 SIP/2.0', 'CANCEL sip:srs@127.0.0.1 SIP/2.0', 'UPDATE sip:srs@127.0.0.1 SIP/2.0',
  'FOO sip:srs@127.0.0.1 SIP/2.0', 'INV@TE sip:x SIP/2.0', ' INVITE sip:x SIP/2.0', 'INVITE', '', 'SIP/2.0 200 OK', 'SIP/2.0 180',
  'SIP/2.0 99999 Big', 'SIP/2.0 200OK', 'SIP/2.0 481 Call/Transaction Does Not Exist', 'HTTP/1.1 200 OK', `INVITE sip:${'a'.repeat(9000)}@x SIP/2.0`,
];

const HEADER_VALUES: Record<string, readonly string[]> = {
  Via: ['SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx', 'SIP/2.0/UDP [::1]:5062;branch=z9hG4bKx;rport', 'SIP/2.0/UDP [::1', 'SIP/2.0/TCP 127.0.0.1:99999', 'SIP/2.0/UDP', 'SIP / 2.0 / UDP h ; branch', 'SIP/2.0/UDP a,SIP/2.0/UDP b', 'SIP/2.0/UDP 127.0.0.1;branch=;received=;rport=x', ''],
  From: ['<sip:a@b>;tag=1', '"A \\"q\\"" <sip:a@b>;tag=1', '<sip:a@b', 'sip:a@b;tag=1', '"unterminated <sip:a@b>', '<>', 'x', ';tag=', `"${'n'.repeat(5000)}" <sip:a@b>`],
  To: ['<sip:srs@127.0.0.1>', '<sip:srs@127.0.0.1>;tag=abc', '<sip:srs', 'sip:srs@x;tag', ''],
  'Call-ID': ['a@b', '', ' ', 'x'.repeat(3000), 'a b c'],
  CSeq: ['1 INVITE', '2147483647 INVITE', '2147483648 INVITE', '1 BYE', '-1 INVITE', 'INVITE', '1', '1  INVITE x', '99999999999 INVITE'],
  'Content-Type': ['application/sdp', 'multipart/mixed', 'multipart/mixed;boundary=', 'application/rs-metadata+xml', 'text/plain', 'application/ +xml', '/', 'application/sdp;;;', 'x'.repeat(2000)],
  'Content-Length': ['0', '-1', '1', '99999999', '999999999', '1000000000', 'abc', ' 12 ', '0x10', '', '4294967296'],
  Require: ['siprec', 'siprec, foo', 'timer', '', ',,,'],
  Supported: ['timer, replaces', ''],
  Contact: ['<sip:src@127.0.0.1:5062>;+sip.src', '<sip:src@127.0.0.1:5062;src>', '*', '<sip:a>,<sip:b>', '<', '"x" <sips:a@[::1]:5061;transport=tls>'],
  'Session-Expires': ['90', '0', '-1', 'x;refresher=uac', '999999999999'],
  'Max-Forwards': ['0', '70', '-1', '256', 'x'],
  'Record-Route': ['<sip:p1;lr>', '<sip:p1;lr>, <sip:p2;lr>', '<'],
};

const COMPACT: Record<string, string> = { Via: 'v', From: 'f', To: 't', 'Call-ID': 'i', 'Content-Type': 'c', 'Content-Length': 'l', Contact: 'm', Supported: 'k', 'Session-Expires': 'x' };

function headerLine(rng: Rng): string {
  const name = rng.pick(Object.keys(HEADER_VALUES));
  const shown = rng.chance(0.2) && COMPACT[name] !== undefined ? COMPACT[name]! : rng.chance(0.1) ? name.toUpperCase() : name;
  const sep = rng.pick([': ', ': ', ':', ' : ', '\t:\t', ':  ', ';', ' ']);
  return `${shown}${sep}${rng.pick(HEADER_VALUES[name]!)}`;
}

function mutateBody(rng: Rng, corpus: Corpus, p: Parts): void {
  const ct = p.headers.find((h) => /^(content-type|c)[ \t]*:/i.test(h))?.replace(/^[^:]*:\s*/, '') ?? '';
  if (/^multipart\//i.test(ct)) {
    const m = mutateMultipart(rng, { contentType: ct, body: p.body });
    const i = headerIndex(p, /^(content-type|c)[ \t]*:/i);
    if (i >= 0) p.headers[i] = `Content-Type: ${m.contentType}`;
    p.body = m.body;
  } else if (rng.chance(0.5)) {
    p.body = Buffer.from(mutateSdp(rng, p.body.length > 0 ? p.body.toString('utf8') : rng.pick(corpus.sdp)), 'utf8');
  } else {
    p.body = Buffer.from(mutateXml(rng, rng.pick(corpus.xml)), 'utf8');
    const i = headerIndex(p, /^(content-type|c)[ \t]*:/i);
    if (i >= 0) p.headers[i] = 'Content-Type: application/rs-metadata+xml';
  }
}

export function mutateSip(rng: Rng, corpus: Corpus, msg: Buffer): Buffer {
  const p = split(msg);
  let sep = SEP;
  let fixLength = true;
  let tail: Buffer | null = null;
  for (let r = rng.range(1, 3); r > 0; r--) {
    switch (rng.int(12)) {
      case 0:
        p.start = rng.pick(START_LINES);
        break;
      case 1: // a header of our own (a duplicate of a known one, often)
        p.headers.splice(rng.int(p.headers.length + 1), 0, headerLine(rng));
        break;
      case 2: { // drop a header the parser needs
        const i = headerIndex(p, rng.pick([/^via\b|^v[ \t]*:/i, /^from\b|^f[ \t]*:/i, /^to\b|^t[ \t]*:/i, /^call-id\b|^i[ \t]*:/i, /^cseq\b/i, CONTENT_LENGTH, /^content-type\b|^c[ \t]*:/i]));
        if (i >= 0) p.headers.splice(i, 1);
        break;
      }
      case 3: // line-level: duplicate, fold, huge, many, cut, other line ends
        p.headers = mutateLines(rng, p.headers.map((h) => `${h}\r\n`)).join('').split('\r\n').filter((_, i, all) => i < all.length - 1 || all[i] !== '');
        break;
      case 4: { // a lying Content-Length
        setContentLength(p, rng.pick(HEADER_VALUES['Content-Length']!).replace('1', String(p.body.length + rng.range(-10, 10))));
        fixLength = false;
        break;
      }
      case 5: // two Content-Lengths
        p.headers.push(`${rng.pick(['Content-Length', 'l'])}: ${p.body.length + rng.pick([0, 1])}`);
        fixLength = false;
        break;
      case 6: // the body, mutated in its own format
        mutateBody(rng, corpus, p);
        break;
      case 7: // many headers, around the limit
        p.headers.splice(1, 0, ...Array.from({ length: rng.pick([200, 255, 256, 257, 1000]) }, (_, i) => `X-H${i}: v`));
        break;
      case 8: // a number somewhere in the head
        if (p.headers.length > 0) {
          const i = rng.int(p.headers.length);
          p.headers[i] = mutateNumber(rng, p.headers[i]!);
        }
        break;
      case 9: // the separator between head and body
        sep = rng.pick(['\n\n', '\r\n\r\n\r\n', '\r\n', '\r\n \r\n', '\r\r', '']);
        break;
      case 10: // a second message, a keep-alive or garbage after this one
        tail = rng.pick([Buffer.from(msg), Buffer.from('\r\n\r\n'), Buffer.from('\r\n'), rng.bytes(rng.size(200))]);
        break;
      default: // leading line ends (keep-alives) or bytes before the start line
        p.start = rng.pick(['\r\n', '\r\n\r\n', '\n', ' ', '\u0000']) + p.start;
    }
  }
  if (fixLength && rng.chance(0.8)) setContentLength(p, String(p.body.length));
  const out = join(p, sep);
  return tail === null ? out : Buffer.concat([out, tail]);
}
