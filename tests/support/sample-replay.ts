/**
 * Replays the shared SIPREC samples (../shared/siprec-samples/, never copied into the repo)
 * to a running daemon over UDP, byte for byte except for what must change to make them
 * deliverable on loopback:
 *   - every IPv4 literal becomes 127.0.0.1 (the 10.0.0.x are placeholders; 0.0.0.0 stays,
 *     it means "no address" to BroadWorks and OpenSIPS);
 *   - the Request-URI points at the daemon, Via and Contact at this client's socket;
 *   - the Call-ID is made unique per replay, the Via branch fresh, the To tag of an in-dialog
 *     sample set to the daemon's tag, and Content-Length recomputed.
 * Header folding, missing spaces after colons, odd header order and the bodies' own quirks
 * are left as the vendor wrote them: they are what the replay is meant to exercise.
 */
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { firstHeader, parseSipMessage, buildResponse, type SipMessage, type SipResponse } from '../../src/sip/message.js';
import { BODY_BOUNDARIES, SAMPLES_DIR } from '../unit/sip/samples.js';

const IPV4 = /\b(?:\d{1,3}\.){3}\d{1,3}\b/g;
/** `X.X.X.X` placeholders left in the damaged BroadWorks capture. */
const PLACEHOLDER = /\bX\.X\.X\.X\b/g;

export function toLoopback(text: string): string {
  return text.replace(IPV4, (a) => (a === '0.0.0.0' ? a : '127.0.0.1')).replace(PLACEHOLDER, '127.0.0.1');
}

export interface ReplayTarget {
  readonly serverPort: number;
  readonly localPort: number;
  readonly callId: string;
  /** The daemon's To tag, for samples that are in-dialog requests. */
  readonly toTag?: string;
  /** Overrides the sample's CSeq number (in-dialog samples after our own requests). */
  readonly cseq?: number;
}

function newBranch(): string {
  return `z9hG4bK${randomBytes(6).toString('hex')}`;
}

/** Rewrites the host[:port] of the first sip:/sips: URI in `value` to `hostPort`. */
function retarget(value: string, hostPort: string): string {
  return value.replace(/(sips?:(?:[^@>;\s]*@)?)(\[[^\]]+\]|[^:;>\s]+)(:\d+)?/i, `$1${hostPort}`);
}

/** The raw sample bytes; `.body` samples are wrapped in a SIPREC INVITE. */
export function sampleMessage(name: string, t: ReplayTarget): Buffer {
  const raw = readFileSync(new URL(name, SAMPLES_DIR));
  let head: string;
  let body: string;
  if (name.endsWith('.body')) {
    const boundary = BODY_BOUNDARIES[name];
    if (boundary === undefined) throw new Error(`no boundary known for ${name}`);
    head = [
      `INVITE sip:srs@127.0.0.1:${t.serverPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${t.localPort};branch=${newBranch()};rport`,
      'Max-Forwards: 70',
      `From: <sip:src@127.0.0.1>;tag=${randomBytes(4).toString('hex')}`,
      `To: <sip:srs@127.0.0.1:${t.serverPort}>`,
      `Call-ID: ${t.callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:src@127.0.0.1:${t.localPort}>;+sip.src`,
      'Require: siprec',
      `Content-Type: multipart/mixed;boundary=${boundary}`,
      'Content-Length: 0',
    ].join('\r\n');
    body = toLoopback(raw.toString('utf8'));
  } else {
    const split = raw.indexOf('\r\n\r\n');
    head = raw.toString('utf8', 0, split);
    body = toLoopback(raw.toString('utf8', split + 4));
  }
  const lines = head.split('\r\n');
  lines[0] = retarget(lines[0]!, `127.0.0.1:${t.serverPort}`);
  const out: string[] = [lines[0]!];
  for (const line of lines.slice(1)) {
    if (/^[ \t]/.test(line)) {
      out.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const sep = line.slice(colon + 1).startsWith(' ') ? ': ' : ':';
    const raw = line.slice(0, colon);
    switch (name) {
      case 'via':
        out.push(`${raw}${sep}SIP/2.0/UDP 127.0.0.1:${t.localPort};rport;branch=${newBranch()}`);
        break;
      case 'call-id':
      case 'i':
        out.push(`${raw}${sep}${t.callId}`);
        break;
      case 'contact':
      case 'm':
        out.push(retarget(line, `127.0.0.1:${t.localPort}`));
        break;
      case 'to':
      case 't': {
        let v = toLoopback(line.slice(colon + 1));
        if (t.toTag !== undefined) v = /;tag=/i.test(v) ? v.replace(/;tag=[^;\s]*/i, `;tag=${t.toTag}`) : `${v.trimEnd()};tag=${t.toTag}`;
        out.push(`${raw}:${v}`);
        break;
      }
      case 'cseq':
        out.push(t.cseq === undefined ? line : `${raw}${sep}${t.cseq} INVITE`);
        break;
      case 'content-length':
      case 'l':
        out.push(`${raw}${sep}${Buffer.byteLength(body, 'utf8')}`);
        break;
      default:
        out.push(toLoopback(line));
    }
  }
  return Buffer.from(`${out.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

/**
 * One dialog driven from raw sample messages over UDP: sends an INVITE, waits for its final
 * response, ACKs it, and later sends in-dialog requests and BYE built from the INVITE's
 * own From/To/Call-ID.
 */
export class SampleDialog {
  private socket: Socket | null = null;
  private readonly waiters: Array<{ pred: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }> = [];
  readonly received: SipMessage[] = [];
  readonly callId = `${randomBytes(8).toString('hex')}@127.0.0.1`;
  localPort = 0;
  toTag: string | undefined;
  private from = '';
  private to = '';
  private uri = '';
  private cseq = 1;
  /** Route headers for requests inside the dialog: the 2xx's Record-Route, reversed (RFC 3261 §12.1.2). */
  private routes: string[] = [];

  constructor(readonly serverPort: number) {}

  async open(): Promise<void> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    s.on('message', (buf) => {
      let m: SipMessage;
      try {
        m = parseSipMessage(buf);
      } catch {
        return;
      }
      this.received.push(m);
      if (m.kind === 'request' && m.method === 'BYE') s.send(buildResponse(m, 200, 'OK'), this.serverPort, '127.0.0.1');
      for (const w of [...this.waiters]) {
        if (w.pred(m)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    this.socket = s;
    this.localPort = s.address().port;
  }

  private waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 10_000): Promise<SipMessage> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer from the daemon for call ${this.callId}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
    });
  }

  send(data: Buffer): void {
    this.socket!.send(data, this.serverPort, '127.0.0.1');
  }

  /** Sends a sample as the dialog's INVITE (or, once established, as a re-INVITE). */
  async sendSample(name: string): Promise<SipResponse> {
    const inDialog = this.toTag !== undefined;
    const msg = sampleMessage(name, {
      serverPort: this.serverPort,
      localPort: this.localPort,
      callId: this.callId,
      ...(inDialog ? { toTag: this.toTag!, cseq: this.cseq + 1 } : {}),
    });
    return this.sendInvite(msg);
  }

  /** Sends a prepared INVITE, waits for the final response and ACKs it. */
  async sendInvite(msg: Buffer): Promise<SipResponse> {
    const req = parseSipMessage(msg);
    if (req.kind !== 'request') throw new Error('not a request');
    const cseqValue = firstHeader(req.headers, 'cseq')!.trim();
    const seq = Number(/^(\d+)/.exec(cseqValue)![1]);
    if (this.toTag === undefined) {
      this.from = firstHeader(req.headers, 'from')!;
      this.to = firstHeader(req.headers, 'to')!;
      this.uri = req.uri;
    }
    this.cseq = Math.max(this.cseq, seq);
    this.send(msg);
    const res = (await this.waitFor((m) => m.kind === 'response' && m.status >= 200 && firstHeader(m.headers, 'cseq')?.trim() === cseqValue.replace(/\s+/g, ' '))) as SipResponse;
    const tag = /;tag=([^;\s]+)/.exec(firstHeader(res.headers, 'to') ?? '')?.[1];
    if (res.status < 300 && this.toTag === undefined && tag) {
      this.toTag = tag;
      this.followRecordRoute(res);
    }
    const via = res.status >= 300 ? firstHeader(req.headers, 'via')! : `SIP/2.0/UDP 127.0.0.1:${this.localPort};branch=${newBranch()}`;
    this.send(Buffer.from([
      `ACK ${this.uri} SIP/2.0`,
      `Via: ${via}`,
      ...(res.status < 300 ? this.routeHeaders() : []),
      'Max-Forwards: 70',
      `From: ${this.from}`,
      `To: ${this.to.replace(/;tag=[^;\s]*/i, '')};tag=${tag ?? ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${seq} ACK`,
      'Content-Length: 0', '', '',
    ].join('\r\n')));
    return res;
  }

  /** An in-dialog request (BYE, UPDATE, INFO, re-INVITE) with an optional body; a re-INVITE's 2xx is ACKed. */
  async request(method: string, opts: { body?: string; contentType?: string; headers?: readonly string[] } = {}): Promise<SipResponse> {
    const seq = ++this.cseq;
    const body = Buffer.from(opts.body ?? '', 'utf8');
    const head = [
      `${method} ${this.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.localPort};branch=${newBranch()};rport`,
      ...this.routeHeaders(),
      'Max-Forwards: 70',
      `From: ${this.from}`,
      `To: ${this.to.replace(/;tag=[^;\s]*/i, '')};tag=${this.toTag ?? ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${seq} ${method}`,
      ...(opts.headers ?? []),
      ...(opts.contentType ? [`Content-Type: ${opts.contentType}`] : []),
      `Content-Length: ${body.length}`, '', '',
    ].join('\r\n');
    this.send(Buffer.concat([Buffer.from(head, 'utf8'), body]));
    const res = (await this.waitFor((m) => m.kind === 'response' && m.status >= 200 && firstHeader(m.headers, 'cseq') === `${seq} ${method}`)) as SipResponse;
    if (method === 'INVITE') {
      this.send(Buffer.from([
        `ACK ${this.uri} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${this.localPort};branch=${newBranch()}`,
        ...this.routeHeaders(),
        'Max-Forwards: 70',
        `From: ${this.from}`,
        `To: ${this.to.replace(/;tag=[^;\s]*/i, '')};tag=${this.toTag ?? ''}`,
        `Call-ID: ${this.callId}`,
        `CSeq: ${seq} ACK`,
        'Content-Length: 0', '', '',
      ].join('\r\n')));
    }
    return res;
  }

  /**
   * Behind a proxy that Record-Routes (Kamailio), requests inside the dialog carry the route
   * set and go to the answerer's Contact (RFC 3261 §12.1.2, §12.2.1.1); the datagrams still
   * go to the proxy. Without Record-Route nothing changes.
   */
  private followRecordRoute(res: SipResponse): void {
    const recordRoute = res.headers.filter((h) => h.name === 'record-route').flatMap((h) => h.value.split(/,(?=\s*<)/).map((v) => v.trim()));
    if (recordRoute.length === 0) return;
    this.routes = recordRoute.reverse();
    const contact = /<([^>]+)>/.exec(firstHeader(res.headers, 'contact') ?? '')?.[1];
    if (contact) this.uri = contact;
  }

  private routeHeaders(): string[] {
    return this.routes.map((r) => `Route: ${r}`);
  }

  /** The Contact of the 2xx that opened the dialog: which recorder took the call. */
  answeredBy(): string | undefined {
    const ok = this.received.find((m): m is SipResponse => m.kind === 'response' && m.status >= 200 && m.status < 300 && /INVITE/.test(firstHeader(m.headers, 'cseq') ?? ''));
    return ok ? firstHeader(ok.headers, 'contact') : undefined;
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}
