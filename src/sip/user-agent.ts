/**
 * The recording endpoint's SIP user agent server: transactions (RFC 3261 §17.2), dialogs
 * (§12), the INVITE/ACK/BYE/CANCEL/OPTIONS/UPDATE handling a recorder needs, and the one
 * request it originates: an in-dialog BYE when it ends a call itself. What to answer is
 * decided by a SipCallHandler (the call manager); this class only speaks SIP.
 */
import { randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { scrubDigits } from '../log.js';
import {
  buildResponse, firstHeader, parseCSeq, parseNameAddr, parseSipMessage, parseVia, serializeMessage,
  SipParseError, tokenList, type NameAddr, type SipHeader, type SipRequest, type SipResponse,
} from './message.js';
import { SipTransport, type BoundListener, type Flow } from './transport.js';
import type { ListenSpec } from '../config/schema.js';

const T1 = 500;
const T2 = 4000;
const TIMER_64T1 = 64 * T1;

/** Option tags we accept in Require. */
const SUPPORTED_EXTENSIONS = ['siprec', 'timer', 'replaces'];
const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO';
const ACCEPT = 'application/sdp, application/rs-metadata+xml, application/rs-metadata, multipart/mixed';
const COUNTED_METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'UPDATE', 'INFO', 'PRACK', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'REFER', 'PUBLISH']);

export interface SipCounters {
  requests: Record<string, number>;
  responses: Record<string, number>;
  /** Messages that could not be parsed, by where they failed. */
  malformed: number;
}

export interface IncomingRequest {
  readonly dialogId: string;
  readonly method: string;
  readonly callId: string;
  readonly requestUri: string;
  readonly from: NameAddr;
  readonly to: NameAddr;
  readonly headers: readonly SipHeader[];
  readonly contentType: string | undefined;
  readonly body: Buffer;
  /** Require: siprec, or +sip.src in Contact. */
  readonly isSiprec: boolean;
  readonly transport: 'UDP' | 'TCP';
  readonly localAddress: string;
}

export interface CallAnswer {
  readonly status: number;
  readonly reason?: string;
  readonly sdp?: string;
  /** Warning header text (RFC 3261 §20.43) to explain a rejection. */
  readonly warning?: string;
  readonly retryAfterSeconds?: number;
  /** The request was a SIPREC one (its body had recording metadata): Contact gets +sip.srs. */
  readonly siprec?: boolean;
}

export type DialogEndReason = 'bye' | 'cancel' | 'no-ack' | 'local' | 'transport';

export interface SipCallHandler {
  /** A new INVITE. The answer's status decides: 2xx opens a dialog. */
  invite(req: IncomingRequest): Promise<CallAnswer>;
  /** The ACK for our 2xx arrived: the dialog is confirmed. */
  confirmed(dialogId: string): void;
  /** A re-INVITE or UPDATE inside an established dialog (the body may be empty). */
  update(req: IncomingRequest): Promise<CallAnswer>;
  /** The dialog is over: the peer hung up, cancelled, never ACKed, or we ended it. */
  ended(dialogId: string, reason: DialogEndReason): void;
}

interface ServerTxn {
  readonly key: string;
  readonly method: string;
  readonly flow: Flow;
  readonly req: SipRequest;
  response: Buffer | null;
  finalStatus: number;
  timers: NodeJS.Timeout[];
  dialogId?: string;
  cancelled: boolean;
}

interface Dialog {
  readonly id: string;
  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  readonly localUri: string;
  readonly remoteUri: string;
  readonly remoteTarget: string;
  readonly routeSet: string[];
  readonly flow: Flow;
  localSeq: number;
  remoteSeq: number;
  confirmed: boolean;
  /** 2xx retransmission until ACK (UDP). */
  okRetransmit: NodeJS.Timeout | null;
  okGiveUp: NodeJS.Timeout | null;
  ended: boolean;
}

interface ClientTxn {
  readonly branch: string;
  timers: NodeJS.Timeout[];
  resolve: (status: number) => void;
}

export class SipUserAgent {
  private readonly transport: SipTransport;
  private readonly serverTxns = new Map<string, ServerTxn>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly clientTxns = new Map<string, ClientTxn>();
  readonly counters: SipCounters = { requests: {}, responses: {}, malformed: 0 };
  private closed = false;

  constructor(
    listen: readonly ListenSpec[],
    private readonly handler: SipCallHandler,
    private readonly opts: { maxMessageBytes: number; userAgent: string; contactHost?: string; log: Logger },
  ) {
    this.transport = new SipTransport(listen, {
      message: (data, flow) => this.onMessage(data, flow),
      framingError: (reason, flow) => {
        this.counters.malformed++;
        this.opts.log.warn({ transport: flow.transport, remote: flow.remote.address, reason }, 'SIP stream closed: cannot frame message');
      },
    }, opts.maxMessageBytes);
  }

  start(): Promise<BoundListener[]> {
    return this.transport.start();
  }

  listeners(): BoundListener[] {
    return this.transport.listeners();
  }

  get dialogCount(): number {
    return this.dialogs.size;
  }

  private onMessage(data: Buffer, flow: Flow): void {
    let msg;
    try {
      msg = parseSipMessage(data, this.opts.maxMessageBytes);
    } catch (e) {
      this.counters.malformed++;
      const err = e as SipParseError;
      this.opts.log.warn({ transport: flow.transport, remote: flow.remote.address, reason: scrubDigits(err.message) }, 'malformed SIP message');
      if (err instanceof SipParseError && err.partial && err.partial.method !== 'ACK') {
        this.respond(err.partial, flow, err.status, reasonPhrase(err.status), { headers: [warning(err.message)] });
      }
      return;
    }
    try {
      if (msg.kind === 'response') this.onResponse(msg);
      else this.onRequest(msg, flow);
    } catch (e) {
      this.opts.log.error({ err: e }, 'SIP request handling failed');
      if (msg.kind === 'request' && msg.method !== 'ACK') this.respond(msg, flow, 500, 'Server Internal Error');
    }
  }

  private count(table: Record<string, number>, key: string): void {
    table[key] = (table[key] ?? 0) + 1;
  }

  private respond(req: SipRequest, flow: Flow, status: number, reason: string, opts: { toTag?: string; headers?: SipHeader[]; body?: string } = {}): Buffer {
    const headers: SipHeader[] = [{ name: 'server', value: this.opts.userAgent }, ...(opts.headers ?? [])];
    const buf = buildResponse(req, status, reason, { ...opts, headers });
    this.count(this.counters.responses, String(status));
    flow.send(buf);
    return buf;
  }

  private txnKey(req: SipRequest): string | null {
    try {
      const via = parseVia(firstHeader(req.headers, 'via')!);
      const branch = via.params.branch;
      const method = req.method === 'ACK' || req.method === 'CANCEL' ? 'INVITE' : req.method;
      if (branch && branch.startsWith('z9hG4bK')) return `${branch}|${via.host}|${via.port ?? ''}|${method}`;
      // RFC 2543 peers: fall back to Call-ID + CSeq number + From tag.
      const cseq = parseCSeq(firstHeader(req.headers, 'cseq')!);
      return `${firstHeader(req.headers, 'call-id')}|${cseq.seq}|${parseNameAddr(firstHeader(req.headers, 'from')!).params.tag ?? ''}|${method}`;
    } catch {
      return null;
    }
  }

  private onRequest(req: SipRequest, flow: Flow): void {
    this.count(this.counters.requests, COUNTED_METHODS.has(req.method) ? req.method : 'other');
    const key = this.txnKey(req);
    if (req.method === 'ACK') return this.onAck(req, key);
    if (req.method === 'CANCEL') return this.onCancel(req, flow, key);
    const existing = key ? this.serverTxns.get(key) : undefined;
    if (existing && existing.method === req.method) {
      // A retransmission: answer with what we last sent (RFC 3261 §17.2.1, §17.2.2).
      if (existing.response) flow.send(existing.response);
      return;
    }
    const txn: ServerTxn = { key: key ?? `anon|${Math.random()}`, method: req.method, flow, req, response: null, finalStatus: 0, timers: [], cancelled: false };
    this.serverTxns.set(txn.key, txn);

    const unsupported = tokenList(req.headers, 'require').filter((t) => !SUPPORTED_EXTENSIONS.includes(t));
    if (unsupported.length > 0 && req.method !== 'BYE') {
      return this.final(txn, 420, 'Bad Extension', { headers: [{ name: 'unsupported', value: unsupported.join(', ') }] });
    }
    const to = parseNameAddr(firstHeader(req.headers, 'to')!);
    const inDialog = to.params.tag !== undefined && to.params.tag !== null;
    switch (req.method) {
      case 'INVITE':
        return inDialog ? this.onUpdate(txn, to) : this.onInvite(txn);
      case 'UPDATE':
        return inDialog ? this.onUpdate(txn, to) : this.final(txn, 481, 'Call/Transaction Does Not Exist');
      case 'BYE':
        return this.onBye(txn, to);
      case 'OPTIONS':
        return this.final(txn, 200, 'OK', { headers: this.capabilityHeaders() });
      case 'INFO': {
        const d = inDialog ? this.dialogFor(req, to) : undefined;
        return d ? this.final(txn, 200, 'OK') : this.final(txn, 481, 'Call/Transaction Does Not Exist');
      }
      default:
        return this.final(txn, 405, 'Method Not Allowed', { headers: [{ name: 'allow', value: ALLOW }] });
    }
  }

  private capabilityHeaders(): SipHeader[] {
    return [
      { name: 'allow', value: ALLOW },
      { name: 'accept', value: ACCEPT },
      { name: 'supported', value: SUPPORTED_EXTENSIONS.join(', ') },
    ];
  }

  /** Sends a final response on a server transaction and arms its retransmission/cleanup. */
  private final(txn: ServerTxn, status: number, reason: string, opts: { toTag?: string; headers?: SipHeader[]; body?: string } = {}): void {
    if (txn.finalStatus >= 200) return;
    txn.finalStatus = status;
    txn.response = this.respond(txn.req, txn.flow, status, reason, opts);
    if (txn.method === 'INVITE' && status >= 300 && txn.flow.transport === 'UDP') {
      // Timer G: repeat a failure until the ACK arrives (§17.2.1).
      let interval = T1;
      const resend = () => {
        if (!this.serverTxns.has(txn.key) || !txn.response) return;
        txn.flow.send(txn.response);
        interval = Math.min(interval * 2, T2);
        txn.timers.push(setTimeout(resend, interval));
      };
      txn.timers.push(setTimeout(resend, interval));
    }
    // Keep the transaction to absorb retransmissions, then forget it (Timer H/J).
    txn.timers.push(setTimeout(() => this.dropTxn(txn), TIMER_64T1));
  }

  private dropTxn(txn: ServerTxn): void {
    for (const t of txn.timers) clearTimeout(t);
    txn.timers = [];
    if (this.serverTxns.get(txn.key) === txn) this.serverTxns.delete(txn.key);
  }

  private onInvite(txn: ServerTxn): void {
    const req = txn.req;
    if (this.closed) {
      return this.final(txn, 503, 'Service Unavailable', { toTag: newTag(), headers: [{ name: 'retry-after', value: '30' }, warning('shutting down')] });
    }
    txn.response = this.respond(req, txn.flow, 100, 'Trying');
    const from = parseNameAddr(firstHeader(req.headers, 'from')!);
    const to = parseNameAddr(firstHeader(req.headers, 'to')!);
    const callId = firstHeader(req.headers, 'call-id')!;
    const remoteTag = from.params.tag ?? '';
    const localTag = newTag();
    const dialogId = `${callId}|${localTag}|${remoteTag}`;
    txn.dialogId = dialogId;
    const incoming = this.incoming(req, txn.flow, dialogId, from, to);
    this.handler.invite(incoming).then(
      (answer) => this.answerInvite(txn, incoming, answer, localTag),
      (err) => {
        this.opts.log.error({ err }, 'INVITE handler failed');
        this.final(txn, 500, 'Server Internal Error', { toTag: localTag });
      },
    );
  }

  private answerInvite(txn: ServerTxn, incoming: IncomingRequest, answer: CallAnswer, localTag: string): void {
    const dialogId = incoming.dialogId;
    if (txn.cancelled || txn.finalStatus >= 200) {
      // CANCEL won the race: the 487 is already sent; undo what the handler set up.
      if (answer.status >= 200 && answer.status < 300) this.handler.ended(dialogId, 'cancel');
      return;
    }
    if (answer.status < 200 || answer.status >= 300) {
      const headers: SipHeader[] = [];
      if (answer.warning) headers.push(warning(answer.warning));
      if (answer.retryAfterSeconds) headers.push({ name: 'retry-after', value: String(answer.retryAfterSeconds) });
      if (answer.status === 488 || answer.status === 415) headers.push({ name: 'accept', value: ACCEPT });
      return this.final(txn, answer.status, answer.reason ?? reasonPhrase(answer.status), { toTag: localTag, headers });
    }
    const req = txn.req;
    const contact = parseNameAddr(firstHeader(req.headers, 'contact') ?? firstHeader(req.headers, 'from')!);
    const dialog: Dialog = {
      id: dialogId,
      callId: incoming.callId,
      localTag,
      remoteTag: incoming.from.params.tag ?? '',
      localUri: incoming.to.uri,
      remoteUri: incoming.from.uri,
      remoteTarget: contact.uri,
      routeSet: req.headers.filter((h) => h.name === 'record-route').map((h) => h.value),
      flow: txn.flow,
      localSeq: Math.floor(Math.random() * 10000) + 1,
      remoteSeq: parseCSeq(firstHeader(req.headers, 'cseq')!).seq,
      confirmed: false,
      okRetransmit: null,
      okGiveUp: null,
      ended: false,
    };
    this.dialogs.set(dialogId, dialog);
    const headers = this.okHeaders(req, txn.flow, incoming.isSiprec);
    txn.finalStatus = answer.status;
    txn.response = this.respond(req, txn.flow, answer.status, answer.reason ?? 'OK', { toTag: localTag, headers, ...(answer.sdp ? { body: answer.sdp } : {}) });
    // The INVITE server transaction ends with a 2xx; the dialog layer repeats the 2xx
    // until the ACK (§13.3.1.4).
    this.dropTxn(txn);
    const ok = txn.response;
    if (txn.flow.transport === 'UDP') {
      let interval = T1;
      const resend = () => {
        if (dialog.confirmed || dialog.ended) return;
        txn.flow.send(ok);
        interval = Math.min(interval * 2, T2);
        dialog.okRetransmit = setTimeout(resend, interval);
      };
      dialog.okRetransmit = setTimeout(resend, interval);
    }
    dialog.okGiveUp = setTimeout(() => {
      if (dialog.confirmed || dialog.ended) return;
      this.opts.log.warn({ dialog: shortId(dialogId) }, '2xx never acknowledged; ending the call');
      this.endDialog(dialog, 'no-ack', true);
    }, TIMER_64T1);
  }

  private okHeaders(req: SipRequest, flow: Flow, siprec: boolean): SipHeader[] {
    const host = this.opts.contactHost ?? flow.local.address;
    const hostPart = isIPv6(host) ? `[${host}]` : host;
    const transportParam = flow.transport === 'TCP' ? ';transport=tcp' : '';
    const headers: SipHeader[] = [
      { name: 'contact', value: `<sip:tallenne@${hostPart}:${flow.local.port}${transportParam}>${siprec ? ';+sip.srs' : ''}` },
      ...this.capabilityHeaders(),
      { name: 'content-type', value: 'application/sdp' },
    ];
    if (tokenList(req.headers, 'require').includes('siprec')) headers.push({ name: 'require', value: 'siprec' });
    const se = firstHeader(req.headers, 'session-expires');
    if (se) {
      const secs = /^\s*(\d+)/.exec(se)?.[1];
      if (secs) {
        headers.push({ name: 'session-expires', value: `${secs};refresher=uac` });
        if (tokenList(req.headers, 'supported').includes('timer') || tokenList(req.headers, 'require').includes('timer')) {
          headers.push({ name: 'require', value: 'timer' });
        }
      }
    }
    return headers;
  }

  private incoming(req: SipRequest, flow: Flow, dialogId: string, from: NameAddr, to: NameAddr): IncomingRequest {
    const contactValue = firstHeader(req.headers, 'contact') ?? '';
    return {
      dialogId,
      method: req.method,
      callId: firstHeader(req.headers, 'call-id')!,
      requestUri: req.uri,
      from,
      to,
      headers: req.headers,
      contentType: firstHeader(req.headers, 'content-type'),
      body: req.body,
      isSiprec: tokenList(req.headers, 'require').includes('siprec') || /\+sip\.src\b/i.test(contactValue),
      transport: flow.transport,
      localAddress: flow.local.address,
    };
  }

  private dialogFor(req: SipRequest, to: NameAddr): Dialog | undefined {
    const from = parseNameAddr(firstHeader(req.headers, 'from')!);
    return this.dialogs.get(`${firstHeader(req.headers, 'call-id')}|${to.params.tag ?? ''}|${from.params.tag ?? ''}`);
  }

  private onUpdate(txn: ServerTxn, to: NameAddr): void {
    const req = txn.req;
    const dialog = this.dialogFor(req, to);
    if (!dialog || dialog.ended) return this.final(txn, 481, 'Call/Transaction Does Not Exist');
    const cseq = parseCSeq(firstHeader(req.headers, 'cseq')!).seq;
    if (cseq <= dialog.remoteSeq && req.method === 'INVITE') return this.final(txn, 500, 'Server Internal Error', { headers: [{ name: 'retry-after', value: '1' }] });
    dialog.remoteSeq = Math.max(dialog.remoteSeq, cseq);
    if (req.method === 'INVITE') txn.response = this.respond(req, txn.flow, 100, 'Trying');
    const from = parseNameAddr(firstHeader(req.headers, 'from')!);
    const incoming = this.incoming(req, txn.flow, dialog.id, from, to);
    this.handler.update(incoming).then(
      (answer) => {
        if (answer.status >= 200 && answer.status < 300) {
          const headers = this.okHeaders(req, txn.flow, incoming.isSiprec);
          if (!answer.sdp) headers.pop();
          this.final(txn, answer.status, answer.reason ?? 'OK', { headers, ...(answer.sdp ? { body: answer.sdp } : {}) });
          if (req.method === 'INVITE') this.dropTxn(txn);
        } else {
          const headers: SipHeader[] = answer.warning ? [warning(answer.warning)] : [];
          this.final(txn, answer.status, answer.reason ?? reasonPhrase(answer.status), { headers });
        }
      },
      (err) => {
        this.opts.log.error({ err }, 'in-dialog update failed');
        this.final(txn, 500, 'Server Internal Error');
      },
    );
  }

  private onAck(req: SipRequest, key: string | null): void {
    // ACK for a failure belongs to the INVITE transaction; ACK for 2xx to the dialog.
    const txn = key ? this.serverTxns.get(key) : undefined;
    if (txn && txn.method === 'INVITE' && txn.finalStatus >= 300) {
      for (const t of txn.timers) clearTimeout(t);
      txn.timers = [setTimeout(() => this.dropTxn(txn), 5000)];
      return;
    }
    let to: NameAddr;
    try {
      to = parseNameAddr(firstHeader(req.headers, 'to')!);
    } catch {
      return;
    }
    const dialog = this.dialogFor(req, to);
    if (!dialog) return;
    if (dialog.confirmed) return;
    dialog.confirmed = true;
    if (dialog.okRetransmit) clearTimeout(dialog.okRetransmit);
    if (dialog.okGiveUp) clearTimeout(dialog.okGiveUp);
    this.handler.confirmed(dialog.id);
  }

  private onCancel(req: SipRequest, flow: Flow, key: string | null): void {
    const inviteTxn = key ? this.serverTxns.get(key) : undefined;
    if (!inviteTxn || inviteTxn.method !== 'INVITE') {
      this.respond(req, flow, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    this.respond(req, flow, 200, 'OK');
    if (inviteTxn.finalStatus < 200) {
      inviteTxn.cancelled = true;
      const toTag = inviteTxn.dialogId?.split('|')[1] ?? newTag();
      this.final(inviteTxn, 487, 'Request Terminated', { toTag });
    }
  }

  private onBye(txn: ServerTxn, to: NameAddr): void {
    const dialog = this.dialogFor(txn.req, to);
    if (!dialog || dialog.ended) return this.final(txn, 481, 'Call/Transaction Does Not Exist');
    this.final(txn, 200, 'OK');
    this.endDialog(dialog, 'bye', false);
  }

  private endDialog(dialog: Dialog, reason: DialogEndReason, sendBye: boolean): void {
    if (dialog.ended) return;
    dialog.ended = true;
    if (dialog.okRetransmit) clearTimeout(dialog.okRetransmit);
    if (dialog.okGiveUp) clearTimeout(dialog.okGiveUp);
    this.dialogs.delete(dialog.id);
    if (sendBye) void this.sendBye(dialog);
    this.handler.ended(dialog.id, reason);
  }

  /** Ends a dialog from our side (RTP timeout, shutdown): sends BYE; reports `ended`. */
  hangUp(dialogId: string, reason: DialogEndReason = 'local'): void {
    const dialog = this.dialogs.get(dialogId);
    if (dialog) this.endDialog(dialog, reason, true);
  }

  private sendBye(dialog: Dialog): Promise<number> {
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const flow = this.transport.flowTo(dialog.flow.transport, dialog.flow.remote, dialog.flow.local) ?? dialog.flow;
    const localHost = isIPv6(flow.local.address) ? `[${flow.local.address}]` : flow.local.address;
    dialog.localSeq++;
    const headers: SipHeader[] = [
      { name: 'via', value: `SIP/2.0/${flow.transport} ${localHost}:${flow.local.port};branch=${branch};rport` },
      { name: 'max-forwards', value: '70' },
      { name: 'from', value: `<${dialog.localUri}>;tag=${dialog.localTag}` },
      { name: 'to', value: `<${dialog.remoteUri}>;tag=${dialog.remoteTag}` },
      { name: 'call-id', value: dialog.callId },
      { name: 'cseq', value: `${dialog.localSeq} BYE` },
      ...dialog.routeSet.map((r) => ({ name: 'route', value: r })),
      { name: 'user-agent', value: this.opts.userAgent },
    ];
    const data = serializeMessage(`BYE ${dialog.remoteTarget} SIP/2.0`, headers);
    this.count(this.counters.requests, 'BYE');
    return new Promise((resolve) => {
      const ctx: ClientTxn = { branch, timers: [], resolve };
      this.clientTxns.set(branch, ctx);
      const finish = (status: number) => {
        for (const t of ctx.timers) clearTimeout(t);
        this.clientTxns.delete(branch);
        resolve(status);
      };
      ctx.resolve = finish;
      flow.send(data);
      if (flow.transport === 'UDP') {
        let interval = T1;
        const resend = () => {
          if (!this.clientTxns.has(branch)) return;
          flow.send(data);
          interval = Math.min(interval * 2, T2);
          ctx.timers.push(setTimeout(resend, interval));
        };
        ctx.timers.push(setTimeout(resend, interval));
      }
      ctx.timers.push(setTimeout(() => finish(408), TIMER_64T1));
    });
  }

  private onResponse(res: SipResponse): void {
    let branch: string | null | undefined;
    try {
      branch = parseVia(firstHeader(res.headers, 'via') ?? '').params.branch;
    } catch {
      return;
    }
    const ctx = branch ? this.clientTxns.get(branch) : undefined;
    if (ctx && res.status >= 200) ctx.resolve(res.status);
  }

  /** Stops taking new calls: INVITEs get 503 from now on. Dialogs go on. */
  stopAccepting(): void {
    this.closed = true;
  }

  get accepting(): boolean {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    // Let pending BYEs get their answers for a moment before the sockets go away.
    const pending = [...this.clientTxns.values()];
    if (pending.length > 0) {
      await Promise.race([
        new Promise((r) => setTimeout(r, 2000)),
        Promise.all(pending.map((c) => new Promise<void>((r) => {
          const prev = c.resolve;
          c.resolve = (s) => {
            prev(s);
            r();
          };
        }))),
      ]);
    }
    for (const t of this.serverTxns.values()) for (const x of t.timers) clearTimeout(x);
    this.serverTxns.clear();
    for (const d of this.dialogs.values()) {
      if (d.okRetransmit) clearTimeout(d.okRetransmit);
      if (d.okGiveUp) clearTimeout(d.okGiveUp);
    }
    await this.transport.close();
  }
}

function newTag(): string {
  return randomBytes(6).toString('hex');
}

function warning(text: string): SipHeader {
  return { name: 'warning', value: `399 tallenne "${text.replace(/["\\\r\n]/g, ' ').slice(0, 200)}"` };
}

/** A dialog id without the Call-ID's host part, for logs. */
export function shortId(dialogId: string): string {
  return dialogId.split('|')[1] ?? dialogId;
}

function reasonPhrase(status: number): string {
  const phrases: Record<number, string> = {
    400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 415: 'Unsupported Media Type',
    420: 'Bad Extension', 480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist', 486: 'Busy Here',
    487: 'Request Terminated', 488: 'Not Acceptable Here', 500: 'Server Internal Error', 503: 'Service Unavailable',
    513: 'Message Too Large',
  };
  return phrases[status] ?? 'Error';
}
