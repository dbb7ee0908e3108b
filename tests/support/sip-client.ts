/**
 * A small SIP user agent client for tests: places an INVITE (plain or SIPREC multipart)
 * over UDP, TCP or TLS to the daemon on loopback, ACKs, answers the daemon's BYE and OPTIONS,
 * and sends BYE.
 * It speaks just enough SIP to drive the recorder; it parses with the project's own parser.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, type Socket as TcpSocket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { parseSipMessage, firstHeader, headerEnd, type SipMessage, type SipResponse, type SipRequest, buildResponse } from '../../src/sip/message.js';

export interface Answer {
  readonly response: SipResponse;
  readonly sdp: string;
  /** audio m-lines of the answer: port and label */
  readonly media: Array<{ port: number; label?: string; payloadTypes: number[]; direction?: string; rtpmap: string[] }>;
  readonly receivedAt: number;
}

export class SipTestClient {
  private udp: UdpSocket | null = null;
  private tcp: TcpSocket | null = null;
  private tcpBuf = Buffer.alloc(0);
  private listeners: Array<(m: SipMessage) => void> = [];
  readonly received: SipMessage[] = [];
  localPort = 0;
  readonly callId = `${randomBytes(6).toString('hex')}@127.0.0.1`;
  readonly fromTag = randomBytes(4).toString('hex');
  toTag = '';
  cseq = 1;
  private inviteBranch = '';
  private lastInvite: { uri: string; from: string; to: string } | null = null;
  /** The status the daemon's OPTIONS get (200, or 481 as a peer that lost the call); null: none at all. */
  optionsAnswer: 200 | 481 | null = 200;

  /** `tlsOptions` (client certificate, CA) for the 'tls' transport. */
  constructor(readonly transport: 'udp' | 'tcp' | 'tls', readonly serverPort: number, readonly host = '127.0.0.1', private readonly tlsOptions: ConnectionOptions = {}) {}

  async open(): Promise<void> {
    if (this.transport === 'udp') {
      const s = createSocket(this.host.includes(':') ? 'udp6' : 'udp4');
      await new Promise<void>((r) => s.bind(0, this.host, () => r()));
      s.on('message', (m) => this.onData(m));
      this.udp = s;
      this.localPort = s.address().port;
    } else {
      const s = this.transport === 'tls'
        ? tlsConnect({ host: this.host, port: this.serverPort, ...this.tlsOptions })
        : createConnection({ host: this.host, port: this.serverPort });
      await new Promise<void>((r, j) => { s.once(this.transport === 'tls' ? 'secureConnect' : 'connect', () => r()); s.once('error', j); });
      s.on('data', (d: Buffer) => {
        this.tcpBuf = Buffer.concat([this.tcpBuf, d]);
        for (;;) {
          const end = headerEnd(this.tcpBuf);
          if (end < 0) return;
          const m = /content-length:\s*(\d+)/i.exec(this.tcpBuf.toString('latin1', 0, end));
          const total = end + Number(m?.[1] ?? 0);
          if (this.tcpBuf.length < total) return;
          const msg = this.tcpBuf.subarray(0, total);
          this.tcpBuf = this.tcpBuf.subarray(total);
          this.onData(Buffer.from(msg));
        }
      });
      this.tcp = s;
      this.localPort = s.localPort!;
    }
  }

  private onData(buf: Buffer): void {
    let m: SipMessage;
    try {
      m = parseSipMessage(buf);
    } catch {
      return;
    }
    this.received.push(m);
    if (m.kind === 'request' && m.method === 'BYE') this.send(buildResponse(m, 200, 'OK'));
    if (m.kind === 'request' && m.method === 'OPTIONS' && this.optionsAnswer !== null) {
      this.send(buildResponse(m, this.optionsAnswer, this.optionsAnswer === 200 ? 'OK' : 'Call/Transaction Does Not Exist'));
    }
    for (const l of [...this.listeners]) l(m);
  }

  send(data: Buffer | string): void {
    const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    if (this.udp) this.udp.send(b, this.serverPort, this.host);
    else this.tcp!.write(b);
  }

  /** Resolves with the first message matching pred (already received ones count). */
  waitFor(pred: (m: SipMessage) => boolean, timeoutMs = 10_000): Promise<SipMessage> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for a SIP message')), timeoutMs);
      const l = (m: SipMessage) => {
        if (pred(m)) {
          clearTimeout(t);
          this.listeners.splice(this.listeners.indexOf(l), 1);
          resolve(m);
        }
      };
      this.listeners.push(l);
    });
  }

  /** The client's host as written in a URI or Via: IPv6 in brackets. */
  get hostPart(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }

  via(branch: string): string {
    return `SIP/2.0/${this.transport.toUpperCase()} ${this.hostPart}:${this.localPort};branch=${branch};rport`;
  }

  /** Sends an INVITE and waits for the final response. */
  async invite(opts: { body: string | Buffer; contentType: string; headers?: string[]; from?: string; to?: string; uri?: string; toTag?: string }): Promise<SipResponse> {
    const uri = opts.uri ?? `sip:rec@${this.hostPart}:${this.serverPort}`;
    const from = opts.from ?? '"Caller" <sip:+358401234567@127.0.0.1>';
    const to = opts.to ?? `<sip:rec@${this.hostPart}:${this.serverPort}>`;
    this.inviteBranch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const body = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body;
    const cseq = this.cseq++;
    const head = [
      `INVITE ${uri} SIP/2.0`,
      `Via: ${this.via(this.inviteBranch)}`,
      'Max-Forwards: 70',
      `From: ${from};tag=${this.fromTag}`,
      `To: ${to}${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} INVITE`,
      `Contact: <sip:src@${this.hostPart}:${this.localPort}${this.transport === 'udp' ? '' : `;transport=${this.transport}`}>`,
      ...(opts.headers ?? []),
      `Content-Type: ${opts.contentType}`,
      `Content-Length: ${body.length}`,
      '', '',
    ].join('\r\n');
    this.lastInvite = { uri, from, to };
    this.send(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    const res = (await this.waitFor((m) => m.kind === 'response' && m.status >= 200 && firstHeader(m.headers, 'cseq') === `${cseq} INVITE`)) as SipResponse;
    const tag = /;tag=([^;\s]+)/.exec(firstHeader(res.headers, 'to') ?? '')?.[1];
    if (tag) this.toTag = tag;
    this.ack(cseq, res.status >= 300 ? this.inviteBranch : `z9hG4bK${randomBytes(6).toString('hex')}`);
    return res;
  }

  private ack(cseq: number, branch: string): void {
    const inv = this.lastInvite!;
    const head = [
      `ACK ${inv.uri} SIP/2.0`,
      `Via: ${this.via(branch)}`,
      'Max-Forwards: 70',
      `From: ${inv.from};tag=${this.fromTag}`,
      `To: ${inv.to};tag=${this.toTag}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} ACK`,
      'Content-Length: 0', '', '',
    ].join('\r\n');
    this.send(head);
  }

  /** An in-dialog request (BYE, re-INVITE, UPDATE); resolves with its final response. */
  async request(method: string, opts: { body?: string; contentType?: string; headers?: string[] } = {}): Promise<SipResponse> {
    const inv = this.lastInvite!;
    const cseq = this.cseq++;
    const branch = `z9hG4bK${randomBytes(6).toString('hex')}`;
    const body = Buffer.from(opts.body ?? '', 'utf8');
    const head = [
      `${method} ${inv.uri} SIP/2.0`,
      `Via: ${this.via(branch)}`,
      'Max-Forwards: 70',
      `From: ${inv.from};tag=${this.fromTag}`,
      `To: ${inv.to};tag=${this.toTag}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} ${method}`,
      `Contact: <sip:src@${this.hostPart}:${this.localPort}>`,
      ...(opts.headers ?? []),
      ...(opts.contentType ? [`Content-Type: ${opts.contentType}`] : []),
      `Content-Length: ${body.length}`, '', '',
    ].join('\r\n');
    this.send(Buffer.concat([Buffer.from(head, 'latin1'), body]));
    const res = (await this.waitFor((m) => m.kind === 'response' && m.status >= 200 && firstHeader(m.headers, 'cseq') === `${cseq} ${method}`)) as SipResponse;
    if (method === 'INVITE') this.ack(cseq, `z9hG4bK${randomBytes(6).toString('hex')}`);
    return res;
  }

  bye(): Promise<SipResponse> {
    return this.request('BYE');
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

/** The audio m-lines of an SDP answer. */
export function answerMedia(sdp: string): Answer['media'] {
  const out: Answer['media'] = [];
  let cur: Answer['media'][number] | null = null;
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=(\w+) (\d+) \S+ (.*)$/.exec(line);
    if (m) {
      cur = { port: Number(m[2]), payloadTypes: m[3]!.trim().split(/\s+/).map(Number), rtpmap: [] };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const label = /^a=label:(.*)$/.exec(line);
    if (label) cur.label = label[1]!.trim();
    const dir = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(line);
    if (dir) cur.direction = dir[1];
    const rtpmap = /^a=rtpmap:(.*)$/.exec(line);
    if (rtpmap) cur.rtpmap.push(rtpmap[1]!.trim());
  }
  return out;
}

export function isRequest(m: SipMessage, method: string): m is SipRequest {
  return m.kind === 'request' && m.method === method;
}
