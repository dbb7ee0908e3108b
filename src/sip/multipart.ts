/**
 * multipart/mixed bodies (RFC 2046 §5.1) as SIPREC clients send them.
 *
 * Real SRCs bend the grammar in a handful of ways, and each is accepted on purpose:
 * a missing closing delimiter (Cisco CUBE, SEMS), spaces after the closing delimiter
 * (Acme), header lines without a space after the colon (BroadWorks), folded header lines,
 * bare LF line ends, and a preamble of blank or whitespace-only lines. What is not
 * accepted: a Content-Type that is not `type/subtype`, a body without any delimiter, and
 * more parts or bytes than a recording INVITE can plausibly need.
 */
import { ProtocolError } from '../errors.js';

export interface MimePart {
  /** Lower-case "type/subtype"; "text/plain" when the part has no Content-Type (RFC 2046 default). */
  contentType: string;
  /** Content-Type parameters, names lower-case, quotes removed. */
  params: Record<string, string>;
  /** Part headers, names lower-case; folded lines joined. */
  headers: Record<string, string>;
  /** The part's content: a view into the message body, not a copy. */
  body: Buffer;
}

export interface ContentType {
  type: string;
  params: Record<string, string>;
}

export const MULTIPART_LIMITS = {
  maxBodyBytes: 1_048_576,
  maxParts: 16,
  maxPartHeaderBytes: 8192,
} as const;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function malformed(reason: string): ProtocolError {
  return new ProtocolError('TALLENNE_SIP_MALFORMED', 400, reason);
}

/**
 * Parses a Content-Type value: `type/subtype *(; name=value)`. Both halves of the media
 * type must be RFC 2045 tokens, so a damaged value such as `application/ +xml` is refused
 * instead of being guessed at.
 */
export function parseContentType(value: string): ContentType {
  if (value.length > 1024) throw malformed('Content-Type is too long');
  const pieces = splitParams(value);
  const media = pieces[0]!.trim();
  const slash = media.indexOf('/');
  const type = slash < 0 ? '' : media.slice(0, slash);
  const subtype = slash < 0 ? '' : media.slice(slash + 1);
  if (!TOKEN.test(type) || !TOKEN.test(subtype) || subtype.startsWith('+')) {
    throw malformed(`malformed Content-Type "${media.slice(0, 80)}"`);
  }
  const params: Record<string, string> = {};
  for (const raw of pieces.slice(1)) {
    const p = raw.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw malformed(`malformed Content-Type parameter "${p.slice(0, 80)}"`);
    const name = p.slice(0, eq).trim().toLowerCase();
    let v = p.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[name] = v;
  }
  return { type: `${type}/${subtype}`.toLowerCase(), params };
}

/** Splits on `;` outside double quotes (a quoted boundary may contain one). */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') quoted = !quoted;
    if (c === '\\' && quoted && i + 1 < value.length) {
      cur += c + value[i + 1]!;
      i++;
      continue;
    }
    if (c === ';' && !quoted) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

const CR = 0x0d;
const LF = 0x0a;

function isBlank(b: number): boolean {
  return b === 0x20 || b === 0x09;
}

/** Index just past the line end that starts at `i` (CRLF or LF), or -1 when `i` is not a line end. */
function pastLineEnd(buf: Buffer, i: number): number {
  if (buf[i] === LF) return i + 1;
  if (buf[i] === CR && buf[i + 1] === LF) return i + 2;
  return -1;
}

interface Delimiter {
  /** Where the "--boundary" starts. */
  start: number;
  /** Where the content before it ends (the line break preceding the delimiter belongs to it). */
  contentEnd: number;
  /** Where the next part's headers begin. */
  next: number;
  closing: boolean;
}

/**
 * Finds the next delimiter line at or after `from`. A delimiter must begin a line and be
 * followed only by optional "--", then transport padding (spaces/tabs) and a line end or
 * the end of the body; "--boundaryX" inside content is not a delimiter.
 */
function findDelimiter(buf: Buffer, dash: Buffer, from: number): Delimiter | null {
  let pos = from;
  for (;;) {
    const at = buf.indexOf(dash, pos);
    if (at < 0) return null;
    const lineStart = at === 0 || buf[at - 1] === LF;
    if (lineStart) {
      let j = at + dash.length;
      let closing = false;
      if (buf[j] === 0x2d && buf[j + 1] === 0x2d) {
        closing = true;
        j += 2;
      }
      while (j < buf.length && isBlank(buf[j]!)) j++;
      const after = j >= buf.length ? buf.length : pastLineEnd(buf, j);
      if (after >= 0) {
        let contentEnd = at;
        if (contentEnd > 0 && buf[contentEnd - 1] === LF) contentEnd--;
        if (contentEnd > 0 && buf[contentEnd - 1] === CR) contentEnd--;
        return { start: at, contentEnd, next: after, closing };
      }
    }
    pos = at + 1;
  }
}

/** Parses the header block at `start`; returns the headers and where the content begins. */
function parsePartHeaders(buf: Buffer, start: number, end: number, n: number): { headers: Record<string, string>; bodyStart: number } {
  const headers: Record<string, string> = {};
  let pos = start;
  let last: string | undefined;
  for (;;) {
    if (pos >= end) return { headers, bodyStart: end };
    if (pos - start > MULTIPART_LIMITS.maxPartHeaderBytes) throw malformed(`part ${n}: headers are too long`);
    let eol = buf.indexOf(LF, pos);
    if (eol < 0 || eol >= end) eol = end;
    let lineEnd = eol;
    if (lineEnd > pos && buf[lineEnd - 1] === CR) lineEnd--;
    const next = eol < end ? eol + 1 : end;
    if (lineEnd === pos) return { headers, bodyStart: next };
    const line = buf.toString('utf8', pos, lineEnd);
    if (isBlank(line.charCodeAt(0))) {
      // A folded line continues the previous header (RFC 5322 §2.2.3).
      if (last === undefined) throw malformed(`part ${n}: header continuation without a header`);
      headers[last] = `${headers[last]} ${line.trim()}`.trim();
    } else {
      const colon = line.indexOf(':');
      if (colon <= 0) throw malformed(`part ${n}: malformed header line`);
      const name = line.slice(0, colon).trim().toLowerCase();
      if (!TOKEN.test(name)) throw malformed(`part ${n}: malformed header name`);
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      last = name;
    }
    pos = next;
  }
}

/**
 * Splits a multipart body into its parts. The parts' bodies are views into `body`.
 * Throws ProtocolError('TALLENNE_SIP_MALFORMED', 400) with the reason.
 */
export function parseMultipart(contentTypeHeader: string, body: Buffer): MimePart[] {
  const ct = parseContentType(contentTypeHeader);
  if (!ct.type.startsWith('multipart/')) throw malformed(`Content-Type ${ct.type} is not multipart`);
  const boundary = ct.params['boundary'];
  if (boundary === undefined || boundary.length === 0 || boundary.length > 70) {
    throw malformed('multipart Content-Type without a usable boundary parameter');
  }
  if (body.length > MULTIPART_LIMITS.maxBodyBytes) throw malformed('multipart body is too large');

  const dash = Buffer.from(`--${boundary}`, 'utf8');
  let delim = findDelimiter(body, dash, 0);
  if (delim === null) throw malformed('multipart body has no boundary delimiter');

  const parts: MimePart[] = [];
  while (!delim.closing && delim.next <= body.length) {
    const following = findDelimiter(body, dash, delim.next);
    // Without a closing delimiter (seen from Cisco CUBE and SEMS) the last part runs to the end.
    const partEnd = following === null ? body.length : following.contentEnd;
    if (following === null && delim.next >= body.length) break;
    if (parts.length >= MULTIPART_LIMITS.maxParts) throw malformed('multipart body has too many parts');
    const n = parts.length + 1;
    const { headers, bodyStart } = parsePartHeaders(body, delim.next, Math.max(partEnd, delim.next), n);
    let contentType = 'text/plain';
    let params: Record<string, string> = {};
    const rawType = headers['content-type'];
    if (rawType !== undefined) {
      try {
        ({ type: contentType, params } = parseContentType(rawType));
      } catch (e) {
        throw malformed(`part ${n}: ${(e as Error).message}`);
      }
    }
    parts.push({ contentType, params, headers, body: body.subarray(bodyStart, Math.max(bodyStart, partEnd)) });
    if (following === null) break;
    delim = following;
  }
  if (parts.length === 0) throw malformed('multipart body has no parts');
  return parts;
}
