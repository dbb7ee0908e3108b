/**
 * The recording endpoint's SIP user agent server: the INVITE/ACK/BYE/CANCEL/OPTIONS/UPDATE
 * handling a recorder needs, and the two requests it originates: an in-dialog BYE when it
 * ends a call itself, and an in-dialog OPTIONS when the call manager asks whether the peer
 * still has a paused call. Transactions (transaction.ts) and dialogs (dialog.ts) keep their own
 * states; this class routes messages to them and decides the responses' fields
 * (response.ts). What to answer a call is decided by a SipCallHandler (the call manager).
 * It reaches the network only through the Transport and time only through the Clock it is
 * given.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { scrubDigits } from '../log.js';
import type { Clock, Timer } from './clock.js';
import { SipCounterSet, type SipCounters } from './counters.js';
import { Dialog, dialogId, dialogIdOf, remoteTargetOf, shortId } from './dialog.js';
import {
  firstHeader, parseCSeq, parseNameAddr, parseSipMessage, parseVia, SipParseError, tokenList,
  type NameAddr, type SipHeader, type SipRequest, type SipResponse,
} from './message.js';
import { encodeResponse, type ResponseDescription } from './response.js';
import { sessionTimerGrant } from './session-timer.js';
import { requestMarksSiprec } from './siprec.js';
import type { RateLimiter } from './rate-limit.js';
import type { SourcePolicy } from './source-policy.js';
import { ClientTransaction, serverTransactionKey, ServerTransaction, TIMEOUT_STATUS } from './transaction.js';
import type { BoundListener, Flow, Transport } from './transport.js';

export type { SipCounters } from './counters.js';
export { shortId } from './dialog.js';

/** Option tags we accept in Require. */
const SUPPORTED: readonly string[] = ['siprec', 'timer', 'replaces'];
const ALLOW: readonly string[] = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'UPDATE', 'INFO'];
const ACCEPT: readonly string[] = ['application/sdp', 'application/rs-metadata+xml', 'application/rs-metadata', 'multipart/mixed'];
/** How long close() lets our BYEs wait for their answers before the transport goes. */
const CLOSE_GRACE_MS = 2000;

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
  /**
   * The request marks itself SIPREC (Require: siprec, or +sip.src or ;src in Contact), or
   * it belongs to a dialog that is SIPREC.
   */
  readonly isSiprec: boolean;
  readonly transport: Flow['transport'];
  readonly localAddress: string;
}

export interface CallAnswer {
  readonly status: number;
  readonly reason?: string;
  readonly sdp?: string;
  /** Warning header text (RFC 3261 §20.43) to explain a rejection. */
  readonly warning?: string;
  readonly retryAfterSeconds?: number;
  /**
   * The handler found a recording-session body part: this is a SIPREC session even if the
   * request did not say so in its headers, and our Contact carries +sip.srs.
   */
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
  /**
   * Whether a new call would be taken now: null when it would (OPTIONS gets 200), else the
   * refusal a new INVITE would get (OPTIONS gets it too, so a load balancer probing with
   * OPTIONS sends calls elsewhere while we are draining or full).
   */
  availability?(): CallAnswer | null;
}

export interface UserAgentOptions {
  readonly maxMessageBytes: number;
  /** Product name for Server and User-Agent. */
  readonly userAgent: string;
  /** Host for our Contact; the address the request arrived on when unset. */
  readonly contactHost?: string;
  readonly log: Logger;
  /** Who may send SIP; everyone when unset. */
  readonly sources?: SourcePolicy;
  /** What a request from an address the policy refuses gets: a 403 ("reject", the default) or nothing ("drop"). */
  readonly unlistedSources?: 'reject' | 'drop';
  /** New INVITEs per source address; beyond it they get 503 with Retry-After. */
  readonly inviteLimiter?: RateLimiter;
}

/** A response's fields as the user agent decides them; the Server header is added for all. */
type ResponseFields = Omit<ResponseDescription, 'server'>;

export class SipUserAgent {
  private readonly serverTxns = new Map<string, ServerTransaction>();
  private readonly clientTxns = new Map<string, ClientTransaction>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly tally = new SipCounterSet();
  /** Requests without a readable Via get a transaction key of their own. */
  private unkeyed = 0;
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly handler: SipCallHandler,
    private readonly opts: UserAgentOptions,
  ) {}

  get counters(): SipCounters {
    return this.tally;
  }

  start(): Promise<BoundListener[]> {
    return this.transport.start({
      message: (data, flow) => this.onMessage(data, flow),
      framingError: (reason, flow) => {
        this.tally.badMessage();
        this.opts.log.warn({ transport: flow.transport, remote: flow.remote.address, reason: scrubDigits(reason) }, 'SIP stream closed: cannot frame message');
      },
      connectionRefused: (reason, remote) => {
        this.tally.connectionRefused(reason);
        this.opts.log.info({ remote: remote.address, reason }, 'SIP connection refused or closed by a limit');
      },
    });
  }

  listeners(): BoundListener[] {
    return this.transport.listeners();
  }

  get dialogCount(): number {
    return this.dialogs.size;
  }

  private onMessage(data: Buffer, flow: Flow): void {
    // Checked before anything is parsed or kept: an unlisted source leaves no state behind.
    const listed = this.opts.sources?.allows(flow.remote.address) ?? true;
    if (!listed && this.opts.unlistedSources === 'drop') return this.refuseSource(flow);
    let msg;
    try {
      msg = parseSipMessage(data, this.opts.maxMessageBytes);
    } catch (e) {
      if (!listed) return this.refuseSource(flow);
      this.tally.badMessage();
      const err = e as SipParseError;
      this.opts.log.warn({ transport: flow.transport, remote: flow.remote.address, reason: scrubDigits(err.message) }, 'malformed SIP message');
      if (err instanceof SipParseError && err.partial && err.partial.method !== 'ACK') {
        this.respondStateless(err.partial, flow, { status: err.status, toTag: newTag(), warning: err.message });
      }
      return;
    }
    if (!listed) {
      this.refuseSource(flow);
      if (msg.kind === 'request' && msg.method !== 'ACK') this.respondStateless(msg, flow, { status: 403, toTag: newTag(), warning: 'source address not allowed' });
      return;
    }
    try {
      if (msg.kind === 'response') this.onResponse(msg);
      else this.onRequest(msg, flow);
    } catch (e) {
      this.opts.log.error({ err: e }, 'SIP request handling failed');
      if (msg.kind === 'request' && msg.method !== 'ACK') this.internalError(msg, flow);
    }
  }

  private refuseSource(flow: Flow): void {
    this.tally.refuse('source');
    this.opts.log.debug({ transport: flow.transport, remote: flow.remote.address }, 'SIP message from a source not in allowed_sources');
  }

  /** A 500 for a request whose handling threw: from its transaction when it has one. */
  private internalError(req: SipRequest, flow: Flow): void {
    const key = serverTransactionKey(req);
    const txn = key ? this.serverTxns.get(key) : undefined;
    if (txn && txn.req === req) this.finish(txn, { status: 500 });
    else this.respondStateless(req, flow, { status: 500, toTag: newTag() });
  }

  /** Encodes a response and counts it: every encoded response is sent. */
  private encode(req: SipRequest, fields: ResponseFields): Buffer {
    this.tally.response(fields.status);
    return encodeResponse(req, { ...fields, server: this.opts.userAgent });
  }

  /** A response outside any transaction (to CANCEL, or to a request that could not be parsed). */
  private respondStateless(req: SipRequest, flow: Flow, fields: ResponseFields): void {
    flow.send(this.encode(req, fields));
  }

  /** The final response of a server transaction; nothing when it already has one. */
  private finish(txn: ServerTransaction, fields: ResponseFields): void {
    if (!txn.pending) return;
    txn.final(fields.status, this.encode(txn.req, { toTag: txn.localTag, ...fields }));
  }

  private onRequest(req: SipRequest, flow: Flow): void {
    this.tally.request(req.method);
    const key = serverTransactionKey(req);
    if (req.method === 'ACK') return this.onAck(req, key);
    if (req.method === 'CANCEL') return this.onCancel(req, flow, key);
    const existing = key ? this.serverTxns.get(key) : undefined;
    if (existing) return existing.retransmitted();
    const txn = new ServerTransaction(key ?? `unkeyed|${++this.unkeyed}`, req, flow, newTag(), this.clock, (t) => {
      if (this.serverTxns.get(t.key) === t) this.serverTxns.delete(t.key);
    });
    this.serverTxns.set(txn.key, txn);

    const unsupported = tokenList(req.headers, 'require').filter((t) => !SUPPORTED.includes(t));
    if (unsupported.length > 0 && req.method !== 'BYE') return this.finish(txn, { status: 420, unsupported });
    const inDialog = dialogIdOf(req);
    switch (req.method) {
      case 'INVITE':
        return inDialog ? this.onReoffer(txn, inDialog) : this.onInvite(txn);
      case 'UPDATE':
        return inDialog ? this.onReoffer(txn, inDialog) : this.finish(txn, { status: 481 });
      case 'BYE':
        return this.onBye(txn, inDialog);
      case 'OPTIONS':
        return this.onOptions(txn, inDialog);
      case 'INFO':
        return this.finish(txn, { status: inDialog && this.dialogs.has(inDialog) ? 200 : 481 });
      default:
        return this.finish(txn, { status: 405, allow: ALLOW });
    }
  }

  /**
   * OPTIONS outside a dialog is a probe (a load balancer's keep-alive): 200 while new calls
   * are taken, 503 with Retry-After while shutting down, full or short of disk. Inside a
   * dialog it is a capability query and always 200.
   */
  private onOptions(txn: ServerTransaction, inDialog: string | undefined): void {
    const capabilities = { allow: ALLOW, accept: ACCEPT, supported: SUPPORTED };
    if (!inDialog) {
      const busy = this.closed ? { status: 503, retryAfterSeconds: 30, warning: 'shutting down' } : this.handler.availability?.() ?? null;
      if (busy) return this.finish(txn, { ...this.failure(busy), ...capabilities });
    }
    return this.finish(txn, { status: 200, ...capabilities });
  }

  private onInvite(txn: ServerTransaction): void {
    const req = txn.req;
    if (this.closed) return this.finish(txn, { status: 503, retryAfterSeconds: 30, warning: 'shutting down' });
    const source = txn.flow.remote.address;
    const limiter = this.opts.inviteLimiter;
    if (limiter && !limiter.take(source)) {
      this.tally.refuse('invite_rate');
      return this.finish(txn, { status: 503, retryAfterSeconds: limiter.retryAfterSeconds(source), warning: 'too many INVITEs from this source' });
    }
    try {
      remoteTargetOf(req);
    } catch (e) {
      return this.finish(txn, { status: 400, warning: (e as Error).message });
    }
    txn.provisional(this.encode(req, { status: 100 }));
    const remoteTag = parseNameAddr(firstHeader(req.headers, 'from')!).params.tag ?? '';
    const incoming = this.incoming(req, txn.flow, dialogId(firstHeader(req.headers, 'call-id')!, txn.localTag, remoteTag), false);
    this.handler.invite(incoming)
      .then((answer) => this.answerInvite(txn, incoming, answer))
      .catch((err) => this.handlerFailed(txn, err, 'INVITE handler failed'));
  }

  /** The handler (or answering it) failed: a 500 when nothing final was sent yet. */
  private handlerFailed(txn: ServerTransaction, err: unknown, what: string): void {
    this.opts.log.error({ err }, what);
    this.finish(txn, { status: 500 });
  }

  private answerInvite(txn: ServerTransaction, incoming: IncomingRequest, answer: CallAnswer): void {
    if (!txn.pending) {
      // CANCEL won the race: the 487 is already sent; undo what the handler set up.
      if (isSuccess(answer)) this.handler.ended(incoming.dialogId, 'cancel');
      return;
    }
    if (!isSuccess(answer)) return this.finish(txn, this.failure(answer));
    const dialog = Dialog.fromInvite(txn.req, txn.flow, txn.localTag, incoming.isSiprec || answer.siprec === true);
    this.dialogs.set(dialog.id, dialog);
    this.accept(txn, dialog, answer);
  }

  /** A re-INVITE or UPDATE inside a dialog. */
  private onReoffer(txn: ServerTransaction, id: string): void {
    const req = txn.req;
    const dialog = this.dialogs.get(id);
    if (!dialog) return this.finish(txn, { status: 481 });
    if (!dialog.acceptRemoteSeq(parseCSeq(firstHeader(req.headers, 'cseq')!).seq, req.method)) {
      return this.finish(txn, { status: 500, retryAfterSeconds: 1 });
    }
    const inProgress = dialog.beginRequest(txn.isInvite ? 'INVITE' : 'UPDATE', req.body.length > 0);
    if (!inProgress) {
      this.tally.refuse('request_in_progress');
      return this.finish(txn, { status: 500, retryAfterSeconds: randomInt(0, 11), warning: 'another request of this call is still being answered' });
    }
    if (txn.isInvite) txn.provisional(this.encode(req, { status: 100 }));
    this.handler.update(this.incoming(req, txn.flow, dialog.id, dialog.siprec))
      .then((answer) => {
        if (!isSuccess(answer)) return this.finish(txn, this.failure(answer));
        if (dialog.state === 'terminated') return this.finish(txn, { status: 481 });
        this.accept(txn, dialog, answer);
      })
      .catch((err) => this.handlerFailed(txn, err, 'in-dialog update failed'))
      .finally(() => dialog.endRequest(inProgress));
  }

  /** Sends the 2xx of `txn` inside `dialog`; a 2xx to an INVITE is repeated until its ACK. */
  private accept(txn: ServerTransaction, dialog: Dialog, answer: CallAnswer): void {
    if (!txn.pending) return;
    const req = txn.req;
    const timer = sessionTimerGrant(req.headers);
    const ok = this.encode(req, {
      status: answer.status,
      ...(answer.reason ? { reason: answer.reason } : {}),
      toTag: txn.localTag,
      contact: this.contact(txn.flow, req.uri, dialog.siprec || requestMarksSiprec(req.headers) || answer.siprec === true),
      allow: ALLOW,
      accept: ACCEPT,
      supported: SUPPORTED,
      require: [
        ...(tokenList(req.headers, 'require').includes('siprec') ? ['siprec'] : []),
        ...(timer?.requireTimer ? ['timer'] : []),
      ],
      ...(timer ? { sessionExpires: timer.sessionExpires } : {}),
      ...(answer.sdp ? { body: { contentType: 'application/sdp', content: answer.sdp } } : {}),
    });
    txn.final(answer.status, ok);
    dialog.refreshTarget(req);
    if (!txn.isInvite) return;
    dialog.awaitAck(parseCSeq(firstHeader(req.headers, 'cseq')!).seq, ok, this.clock, () => {
      this.opts.log.warn({ dialog: shortId(dialog.id) }, '2xx never acknowledged; ending the call');
      this.endDialog(dialog, 'no-ack', true);
    });
  }

  /** The fields of a rejection the handler decided. */
  private failure(answer: CallAnswer): ResponseFields {
    // A handler answering outside 3xx-6xx is a bug; the peer gets a plain 500.
    if (answer.status < 300 || answer.status > 699) return { status: 500 };
    return {
      status: answer.status,
      ...(answer.reason ? { reason: answer.reason } : {}),
      ...(answer.warning ? { warning: answer.warning } : {}),
      ...(answer.retryAfterSeconds ? { retryAfterSeconds: answer.retryAfterSeconds } : {}),
      ...(answer.status === 415 || answer.status === 488 ? { accept: ACCEPT } : {}),
    };
  }

  /**
   * Our Contact on this flow: a sips: URI when the request was addressed to one (RFC 3261
   * §8.1.1.8, §12.1.1), the flow's transport as a parameter, and +sip.srs marking us as a
   * recording server (RFC 7866 §6.1.2).
   */
  private contact(flow: Flow, requestUri: string, siprec: boolean): string {
    const host = uriHost(this.opts.contactHost ?? flow.local.address);
    const scheme = /^sips:/i.test(requestUri) ? 'sips' : 'sip';
    const transportParam = flow.transport === 'UDP' ? '' : `;transport=${flow.transport.toLowerCase()}`;
    return `<${scheme}:tallenne@${host}:${flow.local.port}${transportParam}>${siprec ? ';+sip.srs' : ''}`;
  }

  private incoming(req: SipRequest, flow: Flow, id: string, dialogIsSiprec: boolean): IncomingRequest {
    return {
      dialogId: id,
      method: req.method,
      callId: firstHeader(req.headers, 'call-id')!,
      requestUri: req.uri,
      from: parseNameAddr(firstHeader(req.headers, 'from')!),
      to: parseNameAddr(firstHeader(req.headers, 'to')!),
      headers: req.headers,
      contentType: firstHeader(req.headers, 'content-type'),
      body: req.body,
      isSiprec: dialogIsSiprec || requestMarksSiprec(req.headers),
      transport: flow.transport,
      localAddress: flow.local.address,
    };
  }

  private onAck(req: SipRequest, key: string | null): void {
    // The ACK for a failure belongs to the INVITE transaction (§17.2.1); for a 2xx, to the
    // dialog (§13.3.1.4).
    const txn = key ? this.serverTxns.get(key) : undefined;
    if (txn && (txn.state === 'completed' || txn.state === 'confirmed')) return txn.ack();
    const id = dialogIdOf(req);
    const dialog = id ? this.dialogs.get(id) : undefined;
    if (dialog && dialog.ack(parseCSeq(firstHeader(req.headers, 'cseq')!).seq)) this.handler.confirmed(dialog.id);
  }

  private onCancel(req: SipRequest, flow: Flow, key: string | null): void {
    const invite = key ? this.serverTxns.get(key) : undefined;
    if (!invite || !invite.isInvite) return this.respondStateless(req, flow, { status: 481, toTag: newTag() });
    // §9.2: the CANCEL is answered 200 even when the INVITE already has its final response.
    this.respondStateless(req, flow, { status: 200, toTag: invite.localTag });
    this.finish(invite, { status: 487 });
  }

  private onBye(txn: ServerTransaction, id: string | undefined): void {
    const dialog = id ? this.dialogs.get(id) : undefined;
    if (!dialog) return this.finish(txn, { status: 481 });
    this.finish(txn, { status: 200 });
    this.endDialog(dialog, 'bye', false);
  }

  private endDialog(dialog: Dialog, reason: DialogEndReason, sendBye: boolean): void {
    if (!dialog.terminate()) return;
    this.dialogs.delete(dialog.id);
    if (sendBye) this.sendBye(dialog);
    this.handler.ended(dialog.id, reason);
  }

  /** Ends a dialog from our side (RTP timeout, shutdown): sends BYE; reports `ended`. */
  hangUp(dialogId: string, reason: DialogEndReason = 'local'): void {
    const dialog = this.dialogs.get(dialogId);
    if (dialog) this.endDialog(dialog, reason, true);
  }

  /**
   * Asks the peer of a dialog whether it still has it: an in-dialog OPTIONS. Resolves with the
   * final status (TIMEOUT_STATUS when timer F ran out); undefined when we have no such dialog.
   */
  probe(dialogId: string): Promise<number> | undefined {
    const dialog = this.dialogs.get(dialogId);
    return dialog ? this.sendInDialog(dialog, 'OPTIONS').done : undefined;
  }

  private sendBye(dialog: Dialog): void {
    this.sendInDialog(dialog, 'BYE');
  }

  /** A request of ours inside a dialog, over the dialog's flow (or a fresh one to its peer). */
  private sendInDialog(dialog: Dialog, method: 'BYE' | 'OPTIONS'): ClientTransaction {
    const flow = this.transport.flowTo(dialog.flow.transport, dialog.flow.remote, dialog.flow.local) ?? dialog.flow;
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const via = { transport: flow.transport, host: uriHost(flow.local.address), port: flow.local.port };
    const request = dialog.request(method, via, branch, this.opts.userAgent);
    // The requests counter counts what peers send us, and our BYEs; probes are counted by the call manager.
    if (method === 'BYE') this.tally.request(method);
    const txn = new ClientTransaction(branch, request, flow, this.clock, (t) => this.clientTxns.delete(t.branch));
    this.clientTxns.set(branch, txn);
    return txn;
  }

  private onResponse(res: SipResponse): void {
    let branch: string | null | undefined;
    try {
      branch = parseVia(firstHeader(res.headers, 'via') ?? '').params.branch;
    } catch {
      return;
    }
    if (branch) this.clientTxns.get(branch)?.response(res.status);
  }

  /** Stops taking new calls: INVITEs get 503 from now on. Dialogs go on. */
  stopAccepting(): void {
    this.closed = true;
  }

  get accepting(): boolean {
    return !this.closed;
  }

  /** Stops accepting, gives our pending BYEs a moment for their answers, then closes the transport. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.clientTxns.values()];
    if (pending.length > 0) {
      let grace: Timer | undefined;
      await Promise.race([
        new Promise<void>((r) => {
          grace = this.clock.setTimer(CLOSE_GRACE_MS, r);
        }),
        Promise.all(pending.map((t) => t.done)),
      ]);
      grace?.cancel();
    }
    for (const t of [...this.clientTxns.values()]) t.terminate(TIMEOUT_STATUS);
    for (const t of [...this.serverTxns.values()]) t.terminate();
    for (const d of this.dialogs.values()) d.terminate();
    this.dialogs.clear();
    await this.transport.close();
  }
}

function isSuccess(answer: CallAnswer): boolean {
  return answer.status >= 200 && answer.status < 300;
}

function newTag(): string {
  return randomBytes(6).toString('hex');
}

/** An address as written in a URI or Via: IPv6 in brackets. */
function uriHost(address: string): string {
  return isIPv6(address) ? `[${address}]` : address;
}
