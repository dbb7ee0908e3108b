/**
 * SIP message parsing and serialisation (RFC 3261 §7, §20, §25), pure functions over
 * Buffers with hard limits. Header names are kept lower-case with compact forms expanded;
 * values keep their text (folded lines joined). Only what a recording UAS needs is
 * interpreted: Via, From/To/Contact name-addrs, CSeq, Content-Length.
 */
import { ProtocolError } from '../errors.js';

export interface SipHeader {
  readonly name: string;
  readonly value: string;
}

export interface SipRequest {
  readonly kind: 'request';
  readonly method: string;
  readonly uri: string;
  readonly headers: readonly SipHeader[];
  readonly body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  readonly status: number;
  readonly reason: string;
  readonly headers: readonly SipHeader[];
  readonly body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

export interface Via {
  readonly transport: string;
  readonly host: string;
  readonly port?: number;
  readonly params: Readonly<Record<string, string | null>>;
}

export interface NameAddr {
  readonly displayName?: string;
  readonly uri: string;
  readonly params: Readonly<Record<string, string | null>>;
}

export interface CSeq {
  readonly seq: number;
  readonly method: string;
}

const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via', o: 'event', r: 'refer-to',
  u: 'allow-events', x: 'session-expires', a: 'accept-contact', b: 'referred-by', j: 'reject-contact', d: 'request-disposition',
};

export const MAX_HEADERS = 256;
const TOKEN_RE = /^[A-Za-z0-9.!%*_+`'~-]+$/;

/**
 * Why a message could not be parsed, with as much of it as was readable so that a request
 * can still be answered 400 when its Via/From/To/Call-ID/CSeq were intact.
 */
export class SipParseError extends ProtocolError {
  readonly partial: SipRequest | null;
  /** 400, or 513 (Message Too Large, RFC 3261 §21.5.11) for a message over the size limit. */
  constructor(reason: string, partial: SipRequest | null = null, status = 400) {
    super('TALLENNE_SIP_MALFORMED', status, reason);
    this.partial = partial;
  }
}

/** Index just past the CRLFCRLF that ends the header block, or -1. */
export function headerEnd(buf: Buffer, from = 0, limit = buf.length): number {
  const i = buf.indexOf('\r\n\r\n', from, 'latin1');
  return i < 0 || i + 4 > limit ? -1 : i + 4;
}

/**
 * Parses one whole message (a UDP datagram, or one framed TCP message). Throws
 * SipParseError with the reason. `maxBytes` bounds the whole message.
 */
export function parseSipMessage(buf: Buffer, maxBytes = 65_535): SipMessage {
  if (buf.length > maxBytes) {
    // When the headers alone fit, read them so the sender learns why (513) instead of
    // retransmitting into silence; the oversized body is never looked at.
    const end = headerEnd(buf, 0, maxBytes);
    let partial: SipRequest | null = null;
    if (end > 0) {
      try {
        const head = parseSipMessage(buf.subarray(0, end), maxBytes);
        if (head.kind === 'request') partial = head;
      } catch (e) {
        if (e instanceof SipParseError) partial = e.partial;
      }
    }
    throw new SipParseError(`message of ${buf.length} bytes exceeds the ${maxBytes}-byte limit`, partial, 513);
  }
  let start = 0;
  // RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives).
  while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
  const end = headerEnd(buf, start);
  if (end < 0) throw new SipParseError('no blank line after the headers');
  const head = buf.toString('latin1', start, end - 4);
  const lines = unfold(head.split('\r\n'));
  const startLine = lines[0] ?? '';
  const headers: SipHeader[] = [];
  const problems: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      problems.push(`header line ${i} has no name`);
      continue;
    }
    let name = line.slice(0, colon).trim().toLowerCase();
    if (!TOKEN_RE.test(name)) {
      problems.push(`bad header name "${name.slice(0, 40)}"`);
      continue;
    }
    name = COMPACT[name] ?? name;
    if (headers.length === MAX_HEADERS) {
      // The rest is not read; a request whose first headers carry what a response copies
      // is still answered 400 below.
      problems.push(`more than ${MAX_HEADERS} headers`);
      break;
    }
    headers.push({ name, value: line.slice(colon + 1).trim() });
  }

  let bodyEnd = buf.length;
  const cl = firstHeader(headers, 'content-length');
  if (cl !== undefined) {
    if (!/^\d{1,9}$/.test(cl)) problems.push(`bad Content-Length "${cl.slice(0, 20)}"`);
    else {
      const n = Number(cl);
      if (end + n > buf.length) problems.push(`Content-Length ${n} is larger than the ${buf.length - end} bytes received`);
      else bodyEnd = end + n;
    }
  }
  const body = buf.subarray(end, bodyEnd);

  const resp = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(startLine);
  if (resp) {
    if (problems.length > 0) throw new SipParseError(problems.join('; '));
    return { kind: 'response', status: Number(resp[1]), reason: resp[2] ?? '', headers, body };
  }
  const req = /^([A-Za-z0-9.!%*_+`'~-]+) (\S+) SIP\/2\.0$/.exec(startLine);
  if (!req) throw new SipParseError(`bad start line "${startLine.slice(0, 80)}"`);
  const request: SipRequest = { kind: 'request', method: req[1]!.toUpperCase(), uri: req[2]!, headers, body };
  for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (firstHeader(headers, h) === undefined) problems.push(`missing ${h} header`);
  }
  if (problems.length === 0) {
    try {
      const cseq = parseCSeq(firstHeader(headers, 'cseq')!);
      if (cseq.method !== request.method) problems.push(`CSeq method ${cseq.method} does not match ${request.method}`);
      parseVia(firstHeader(headers, 'via')!);
      parseNameAddr(firstHeader(headers, 'from')!);
      parseNameAddr(firstHeader(headers, 'to')!);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length > 0) throw new SipParseError(problems.join('; '), canAnswer(headers) ? request : null);
  return request;
}

/** Whether a 400 can be built: the headers a response copies are there and readable. */
function canAnswer(headers: readonly SipHeader[]): boolean {
  try {
    parseVia(firstHeader(headers, 'via') ?? '');
    return ['from', 'to', 'call-id', 'cseq'].every((h) => firstHeader(headers, h) !== undefined);
  } catch {
    return false;
  }
}

function unfold(lines: string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if ((l.startsWith(' ') || l.startsWith('\t')) && out.length > 1) out[out.length - 1] += ' ' + l.trim();
    else out.push(l);
  }
  return out;
}

export function firstHeader(headers: readonly SipHeader[], name: string): string | undefined {
  for (const h of headers) if (h.name === name) return h.value;
  return undefined;
}

export function allHeaders(headers: readonly SipHeader[], name: string): string[] {
  const out: string[] = [];
  for (const h of headers) if (h.name === name) out.push(h.value);
  return out;
}

/** Values of a comma-separated header across all its occurrences (Require, Supported, Allow). */
export function tokenList(headers: readonly SipHeader[], name: string): string[] {
  return allHeaders(headers, name).flatMap((v) => v.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
}

/** Splits at commas outside quotes and angle brackets. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let quoted = false;
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (quoted) {
      if (ch === '\\') {
        cur += ch + (value[i + 1] ?? '');
        i++;
        continue;
      }
      if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '<') depthAngle++;
    else if (ch === '>') depthAngle = Math.max(0, depthAngle - 1);
    else if (ch === ',' && depthAngle === 0) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

export function parseParams(text: string): Record<string, string | null> {
  const params: Record<string, string | null> = {};
  for (const part of text.split(';')) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    if (eq < 0) params[p.toLowerCase()] = null;
    else params[p.slice(0, eq).trim().toLowerCase()] = p.slice(eq + 1).trim();
  }
  return params;
}

/** "SIP/2.0/UDP host:port;branch=z9hG4bK..;rport" — IPv6 references in brackets. */
export function parseVia(value: string): Via {
  const first = splitList(value)[0] ?? '';
  const m = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z]+)\s+(\[[0-9A-Fa-f:.]+\]|[^\s;:]+)(?:\s*:\s*(\d{1,5}))?\s*(;.*)?$/.exec(first);
  if (!m) throw new Error(`bad Via "${first.slice(0, 80)}"`);
  const host = m[2]!;
  return {
    transport: m[1]!.toUpperCase(),
    host: host.startsWith('[') ? host.slice(1, -1) : host,
    ...(m[3] ? { port: Number(m[3]) } : {}),
    params: parseParams(m[4] ?? ''),
  };
}

/** name-addr or addr-spec with header parameters (From, To, Contact, P-Asserted-Identity). */
export function parseNameAddr(value: string): NameAddr {
  const v = value.trim();
  const lt = v.indexOf('<');
  if (lt >= 0) {
    const gt = v.indexOf('>', lt);
    if (gt < 0) throw new Error(`unclosed < in "${v.slice(0, 80)}"`);
    let name = v.slice(0, lt).trim();
    if (name.startsWith('"') && name.endsWith('"') && name.length >= 2) name = name.slice(1, -1).replace(/\\(.)/g, '$1');
    return {
      ...(name ? { displayName: name } : {}),
      uri: v.slice(lt + 1, gt).trim(),
      params: parseParams(v.slice(gt + 1)),
    };
  }
  // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
  const semi = v.indexOf(';');
  const uri = (semi < 0 ? v : v.slice(0, semi)).trim();
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(uri)) throw new Error(`bad address "${v.slice(0, 80)}"`);
  return { uri, params: parseParams(semi < 0 ? '' : v.slice(semi)) };
}

export function parseCSeq(value: string): CSeq {
  const m = /^(\d{1,10})\s+([A-Za-z0-9.!%*_+`'~-]+)$/.exec(value.trim());
  if (!m || Number(m[1]) > 2 ** 31 - 1) throw new Error(`bad CSeq "${value.slice(0, 40)}"`);
  return { seq: Number(m[1]), method: m[2]!.toUpperCase() };
}

/** The user part of a SIP/SIPS/TEL URI, unescaped; undefined when there is none. */
export function uriUser(uri: string): string | undefined {
  const m = /^(?:sips?|tel):([^@;?>]+)(?:@|;|\?|$)/i.exec(uri.trim());
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!.split(':')[0]!);
  } catch {
    return m[1];
  }
}

/**
 * Serialises a message; Content-Length is always set from the body. The message gets memory
 * of its own, not a slice of Node's shared 8 KiB buffer pool: a transaction keeps its last
 * response for 32 s (timers J and L), and a slice would keep the whole slab alive with it,
 * 8 KiB per call while a thousand calls hang up.
 */
export function serializeMessage(start: string, headers: readonly SipHeader[], body: Buffer | string = ''): Buffer {
  const bodyBuf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let head = start + '\r\n';
  for (const h of headers) {
    if (h.name === 'content-length') continue;
    head += `${canonicalName(h.name)}: ${h.value}\r\n`;
  }
  head += `Content-Length: ${bodyBuf.length}\r\n\r\n`;
  const out = Buffer.allocUnsafeSlow(head.length + bodyBuf.length);
  out.write(head, 0, 'latin1');
  bodyBuf.copy(out, head.length);
  return out;
}

const CANON: Record<string, string> = {
  'call-id': 'Call-ID', cseq: 'CSeq', www: 'WWW', 'www-authenticate': 'WWW-Authenticate',
  'mime-version': 'MIME-Version', 'p-asserted-identity': 'P-Asserted-Identity',
};

export function canonicalName(n: string): string {
  return CANON[n] ?? n.replace(/(^|-)([a-z])/g, (_, d: string, c: string) => d + c.toUpperCase());
}

/**
 * A response to `req` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied; To copied with
 * `toTag` added when it has none.
 */
export function buildResponse(
  req: SipRequest,
  status: number,
  reason: string,
  opts: { toTag?: string; headers?: readonly SipHeader[]; body?: Buffer | string } = {},
): Buffer {
  const headers: SipHeader[] = [];
  for (const h of req.headers) {
    if (h.name === 'via' || h.name === 'from' || h.name === 'call-id' || h.name === 'cseq' || h.name === 'record-route') {
      headers.push(h);
    } else if (h.name === 'to') {
      let to = h.value;
      if (opts.toTag && status > 100) {
        try {
          if (parseNameAddr(to).params.tag === undefined) to += `;tag=${opts.toTag}`;
        } catch {
          /* an unreadable To was copied as it came */
        }
      }
      headers.push({ name: 'to', value: to });
    }
  }
  if (opts.headers) headers.push(...opts.headers);
  return serializeMessage(`SIP/2.0 ${status} ${reason}`, headers, opts.body ?? '');
}
