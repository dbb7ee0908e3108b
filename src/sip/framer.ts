/**
 * Framing SIP messages on a stream transport (RFC 3261 §18.3): a pure, incremental splitter
 * with hard limits. Bytes go in as they arrive; whole messages come out, each exactly its
 * header block plus Content-Length bytes. It reads nothing of SIP beyond the start line's
 * shape and Content-Length. A stream that cannot be framed (no or unreadable or conflicting
 * Content-Length, a message over the limit, bytes that are not a message start) is dead:
 * the caller closes the connection, since nothing after it can be trusted.
 *
 * Keep-alives (RFC 5626 §3.5.1): a CRLFCRLF between messages is a ping and is reported so
 * the transport can answer with a CRLF pong; a lone CRLF (a pong, or stray line ends) is
 * skipped.
 */
import { headerEnd } from './message.js';

export type Frame = { readonly kind: 'message'; readonly data: Buffer } | { readonly kind: 'ping' };

export interface FramerResult {
  /** What completed, in stream order. */
  readonly frames: Frame[];
  /** Set when the stream cannot be framed any further; every later push repeats it. */
  readonly error?: string;
}

const CR = 0x0d;
const LF = 0x0a;
const PING = Buffer.from('\r\n\r\n', 'latin1');
/** The longest start line worth reading; a request URI longer than this is not ours. */
const MAX_START_LINE = 8192;
const START_LINE = /^(?:[A-Za-z0-9.!%*_+`'~-]+ \S+ SIP\/2\.0|SIP\/2\.0 \d{3}(?: .*)?)$/;
const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:(.*)$/i;

export class StreamFramer {
  private pending: Buffer = Buffer.alloc(0);
  /** Where the search for the end of the header block resumes. */
  private searchFrom = 0;
  private dead: string | undefined;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes held for a message not yet complete. */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Buffer): FramerResult {
    const frames: Frame[] = [];
    if (this.dead !== undefined) return { frames, error: this.dead };
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const error = this.drain(frames);
    if (error !== undefined) {
      this.dead = error;
      this.pending = Buffer.alloc(0);
      return { frames, error };
    }
    return { frames };
  }

  private drain(frames: Frame[]): string | undefined {
    for (;;) {
      if (!this.skipLineEnds(frames) || this.pending.length === 0) return undefined;
      const lineEnd = this.pending.indexOf('\r\n', 0, 'latin1');
      if (lineEnd > MAX_START_LINE || (lineEnd < 0 && this.pending.length > MAX_START_LINE)) return 'start line too long';
      if (lineEnd < 0) return undefined;
      if (!START_LINE.test(this.pending.toString('latin1', 0, lineEnd))) return 'bytes that do not start a SIP message';
      const limit = Math.min(this.pending.length, this.maxMessageBytes);
      const end = headerEnd(this.pending, this.searchFrom, limit);
      if (end < 0) {
        if (this.pending.length >= this.maxMessageBytes) return `headers exceed the ${this.maxMessageBytes}-byte message limit`;
        this.searchFrom = Math.max(0, this.pending.length - 3);
        return undefined;
      }
      const length = contentLength(this.pending.toString('latin1', lineEnd + 2, end - 4));
      if (typeof length === 'string') return length;
      const total = end + length;
      if (total > this.maxMessageBytes) return `message of ${total} bytes exceeds the ${this.maxMessageBytes}-byte limit`;
      if (this.pending.length < total) {
        this.searchFrom = end - 4;
        return undefined;
      }
      // A copy: the message outlives this connection's buffer.
      frames.push({ kind: 'message', data: Buffer.from(this.pending.subarray(0, total)) });
      this.pending = this.pending.subarray(total);
      this.searchFrom = 0;
    }
  }

  /**
   * Drops line ends before a message, reporting each CRLFCRLF as a ping. Returns false when
   * what is left could still become a ping and more bytes are needed to tell.
   */
  private skipLineEnds(frames: Frame[]): boolean {
    let p = this.pending;
    while (p.length > 0 && (p[0] === CR || p[0] === LF)) {
      if (p.length >= PING.length && p.subarray(0, PING.length).equals(PING)) {
        frames.push({ kind: 'ping' });
        p = p.subarray(PING.length);
      } else if (p.length < PING.length && PING.subarray(0, p.length).equals(p)) {
        break;
      } else {
        p = p.subarray(p[0] === CR && p[1] === LF ? 2 : 1);
      }
    }
    this.pending = p;
    return p.length === 0 || (p[0] !== CR && p[0] !== LF);
  }
}

/**
 * The Content-Length of a header block (start line excluded), or why it cannot be used.
 * Stream transports must carry it (§18.3); two different values mean the stream is not
 * what it claims.
 */
function contentLength(head: string): number | string {
  let found: number | undefined;
  for (const line of head.split('\r\n')) {
    const m = CONTENT_LENGTH.exec(line);
    if (!m) continue;
    const text = m[1]!.trim();
    if (!/^\d{1,9}$/.test(text)) return `unreadable Content-Length "${text.slice(0, 20)}"`;
    const n = Number(text);
    if (found !== undefined && found !== n) return 'conflicting Content-Length headers';
    found = n;
  }
  return found ?? 'no Content-Length on a stream transport';
}

/** A datagram made only of line ends: a UDP keep-alive, not a message. */
export function isKeepAlive(datagram: Buffer): boolean {
  if (datagram.length === 0) return true;
  for (const b of datagram) if (b !== CR && b !== LF) return false;
  return true;
}
