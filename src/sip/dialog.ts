/**
 * A dialog on the server side (RFC 3261 §12), created by our 2xx to an INVITE:
 *
 *   accepted (2xx sent) → confirmed (ACK) → terminated
 *   accepted → terminated (BYE, no ACK, hang-up)
 *
 * It owns the dialog's identity and route, both CSeq spaces, and the repetition of each
 * 2xx to an INVITE (the first and every re-INVITE) until its ACK (§13.3.1.4).
 */
import type { Clock } from './clock.js';
import {
  firstHeader, parseCSeq, parseNameAddr, serializeMessage, splitList, type SipHeader, type SipRequest,
} from './message.js';
import { Retransmitter } from './retransmit.js';
import { move, type Moves } from './state.js';
import type { Flow } from './transport.js';

export type DialogState = 'accepted' | 'confirmed' | 'terminated';

const MOVES: Moves<DialogState> = {
  accepted: ['confirmed', 'terminated'],
  confirmed: ['terminated'],
  terminated: [],
};

/** Call-ID, our tag, the peer's tag. */
export function dialogId(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}|${localTag}|${remoteTag}`;
}

/** The dialog a request names: its To tag is ours, its From tag the peer's. Undefined when To has no tag. */
export function dialogIdOf(req: SipRequest): string | undefined {
  const localTag = parseNameAddr(firstHeader(req.headers, 'to')!).params.tag;
  if (localTag === undefined || localTag === null) return undefined;
  const remoteTag = parseNameAddr(firstHeader(req.headers, 'from')!).params.tag ?? '';
  return dialogId(firstHeader(req.headers, 'call-id')!, localTag, remoteTag);
}

/**
 * Where requests inside the dialog go: the INVITE's (first) Contact, or its From URI when it
 * has none. Throws when the Contact cannot be read.
 */
export function remoteTargetOf(invite: SipRequest): string {
  const contact = splitList(firstHeader(invite.headers, 'contact') ?? '')[0];
  return contact ? parseNameAddr(contact).uri : parseNameAddr(firstHeader(invite.headers, 'from')!).uri;
}

/** A dialog id without the Call-ID (whose host part can be personal), for logs. */
export function shortId(id: string): string {
  return id.split('|')[1] ?? id;
}

/** A re-INVITE or UPDATE being answered, as Dialog.beginRequest recorded it. */
export interface InDialogRequest {
  readonly method: 'INVITE' | 'UPDATE';
  /** It carries a body (an offer, metadata or both). */
  readonly body: boolean;
}

/**
 * Whether a re-INVITE or UPDATE collides with one still being answered on the same dialog.
 * The peer gets 500 with a random Retry-After and tries again:
 *   - a re-INVITE while an earlier re-INVITE has no final answer (RFC 3261 §14.2);
 *   - an UPDATE while an earlier UPDATE has no final answer (RFC 3311 §5.2);
 *   - a request with a body while another body is still being answered: an offer received
 *     and not yet answered (RFC 3311 §5.2, RFC 6337 §3.1); metadata counts too, so two
 *     updates of one call are never merged at once.
 * We never send offers, so the 491 glare case does not arise. Pure.
 */
export function collides(next: InDialogRequest, pending: Iterable<InDialogRequest>): boolean {
  for (const p of pending) {
    if (p.method === next.method) return true;
    if (p.body && next.body) return true;
  }
  return false;
}

export class Dialog {
  private _state: DialogState = 'accepted';
  private localSeq = Math.floor(Math.random() * 10_000) + 1;
  private remoteSeq: number;
  /** In-dialog re-INVITEs and UPDATEs we have not answered yet (see beginRequest). */
  private readonly inProgress = new Set<InDialogRequest>();
  /** The 2xx to the latest INVITE, repeated until its ACK. */
  private unacked: { readonly cseq: number; readonly retransmitter: Retransmitter } | null = null;

  /** Where requests inside the dialog go; a re-INVITE or UPDATE may move it (§12.2.2). */
  private _remoteTarget: string;

  private constructor(
    readonly id: string,
    readonly callId: string,
    readonly localTag: string,
    readonly remoteTag: string,
    readonly localUri: string,
    readonly remoteUri: string,
    remoteTarget: string,
    readonly routeSet: readonly string[],
    readonly flow: Flow,
    /** The peer is a SIPREC recording client: our Contact carries +sip.srs. */
    readonly siprec: boolean,
    inviteSeq: number,
  ) {
    this.remoteSeq = inviteSeq;
    this._remoteTarget = remoteTarget;
  }

  /** The UAS side of §12.1.1: the dialog our 2xx to `invite` creates. */
  static fromInvite(invite: SipRequest, flow: Flow, localTag: string, siprec: boolean): Dialog {
    const h = invite.headers;
    const callId = firstHeader(h, 'call-id')!;
    const from = parseNameAddr(firstHeader(h, 'from')!);
    const to = parseNameAddr(firstHeader(h, 'to')!);
    const remoteTag = from.params.tag ?? '';
    return new Dialog(
      dialogId(callId, localTag, remoteTag), callId, localTag, remoteTag, to.uri, from.uri,
      remoteTargetOf(invite),
      h.filter((x) => x.name === 'record-route').map((x) => x.value),
      flow, siprec, parseCSeq(firstHeader(h, 'cseq')!).seq,
    );
  }

  get remoteTarget(): string {
    return this._remoteTarget;
  }

  /** A target refresh we accepted (2xx to a re-INVITE or UPDATE): its Contact, when readable, is the new target. */
  refreshTarget(req: SipRequest): void {
    if (firstHeader(req.headers, 'contact') === undefined) return;
    try {
      this._remoteTarget = remoteTargetOf(req);
    } catch {
      /* an unreadable Contact leaves the target as it was */
    }
  }

  get state(): DialogState {
    return this._state;
  }

  private to(next: DialogState): void {
    this._state = move(MOVES, 'dialog', this._state, next);
  }

  /**
   * Whether an in-dialog request with this CSeq comes in order (§12.2.2). A re-INVITE
   * must be newer than anything seen; other methods only move the counter on.
   */
  acceptRemoteSeq(seq: number, method: string): boolean {
    if (method === 'INVITE' && seq <= this.remoteSeq) return false;
    this.remoteSeq = Math.max(this.remoteSeq, seq);
    return true;
  }

  /**
   * Records a re-INVITE or UPDATE as being answered, or returns null when it collides with
   * one still in progress (`collides`). The caller passes the returned entry to endRequest
   * once its final response is sent.
   */
  beginRequest(method: 'INVITE' | 'UPDATE', body: boolean): InDialogRequest | null {
    const req: InDialogRequest = { method, body };
    if (collides(req, this.inProgress)) return null;
    this.inProgress.add(req);
    return req;
  }

  endRequest(req: InDialogRequest): void {
    this.inProgress.delete(req);
  }

  /**
   * Repeats `ok`, our 2xx to the INVITE with CSeq `cseq`, until its ACK; after 64·T1
   * without one, `onNoAck` (the caller ends the dialog, §13.3.1.4).
   */
  awaitAck(cseq: number, ok: Buffer, clock: Clock, onNoAck: () => void): void {
    this.unacked?.retransmitter.stop();
    this.unacked = {
      cseq,
      retransmitter: new Retransmitter(clock, {
        resend: () => this.flow.send(ok),
        reliable: this.flow.transport !== 'UDP',
        onTimeout: onNoAck,
      }),
    };
  }

  /** An ACK with this CSeq arrived. Returns true when it confirmed the dialog. */
  ack(cseq: number): boolean {
    if (this.unacked?.cseq !== cseq) return false;
    this.unacked.retransmitter.stop();
    this.unacked = null;
    if (this._state !== 'accepted') return false;
    this.to('confirmed');
    return true;
  }

  /** Ends the dialog. Returns false when it had already ended. */
  terminate(): boolean {
    if (this._state === 'terminated') return false;
    this.to('terminated');
    this.unacked?.retransmitter.stop();
    this.unacked = null;
    return true;
  }

  /** A new request inside the dialog (§12.2.1.1), sent from `local` with this Via branch. */
  request(method: string, via: { transport: Flow['transport']; host: string; port: number }, branch: string, userAgent: string): Buffer {
    this.localSeq++;
    const headers: SipHeader[] = [
      { name: 'via', value: `SIP/2.0/${via.transport} ${via.host}:${via.port};branch=${branch};rport` },
      { name: 'max-forwards', value: '70' },
      { name: 'from', value: `<${this.localUri}>;tag=${this.localTag}` },
      { name: 'to', value: `<${this.remoteUri}>;tag=${this.remoteTag}` },
      { name: 'call-id', value: this.callId },
      { name: 'cseq', value: `${this.localSeq} ${method}` },
      ...this.routeSet.map((r) => ({ name: 'route', value: r })),
      { name: 'user-agent', value: userAgent },
    ];
    return serializeMessage(`${method} ${this._remoteTarget} SIP/2.0`, headers);
  }
}
