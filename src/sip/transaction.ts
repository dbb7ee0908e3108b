/**
 * Server and client transactions (RFC 3261 §17, with RFC 6026's Accepted state), each with
 * explicit states changed only through their transition table:
 *
 *   INVITE server:      proceeding → accepted (2xx) → terminated
 *                       proceeding → completed (failure) → confirmed (ACK) → terminated
 *   non-INVITE server:  trying → completed → terminated
 *   non-INVITE client:  trying → proceeding (1xx) → terminated (final, timeout or close)
 *
 * Any state can move to terminated (timers, shutdown). A transaction sends on its Flow and
 * arms its timers on the Clock; what to answer is the user agent's business.
 */
import type { Clock, Timer } from './clock.js';
import { firstHeader, parseCSeq, parseNameAddr, parseVia, type SipRequest } from './message.js';
import { Retransmitter, T4, TIMER_64T1 } from './retransmit.js';
import { move, type Moves } from './state.js';
import type { Flow } from './transport.js';

/**
 * What a request is matched on to find its server transaction (§17.2.3): the Via branch
 * and sent-by, and the method, ACK and CANCEL counting as INVITE. Peers without the RFC 3261
 * branch cookie are matched on Call-ID, CSeq number and From tag instead. Null when the
 * request has no readable Via or CSeq.
 */
export function serverTransactionKey(req: SipRequest): string | null {
  try {
    const via = parseVia(firstHeader(req.headers, 'via')!);
    const method = req.method === 'ACK' || req.method === 'CANCEL' ? 'INVITE' : req.method;
    const branch = via.params.branch;
    if (branch && branch.startsWith('z9hG4bK')) return `${branch}|${via.host}|${via.port ?? ''}|${method}`;
    const cseq = parseCSeq(firstHeader(req.headers, 'cseq')!);
    return `${firstHeader(req.headers, 'call-id')}|${cseq.seq}|${parseNameAddr(firstHeader(req.headers, 'from')!).params.tag ?? ''}|${method}`;
  } catch {
    return null;
  }
}

export type ServerTxnState = 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

const INVITE_SERVER: Moves<ServerTxnState> = {
  trying: [],
  proceeding: ['accepted', 'completed', 'terminated'],
  accepted: ['terminated'],
  completed: ['confirmed', 'terminated'],
  confirmed: ['terminated'],
  terminated: [],
};

const NON_INVITE_SERVER: Moves<ServerTxnState> = {
  trying: ['completed', 'terminated'],
  proceeding: [],
  accepted: [],
  completed: ['terminated'],
  confirmed: [],
  terminated: [],
};

export class ServerTransaction {
  private _state: ServerTxnState;
  private lastResponse: Buffer | null = null;
  private retransmitter: Retransmitter | null = null;
  private linger: Timer | null = null;

  /**
   * @param key what retransmissions, ACK and CANCEL are matched on
   * @param localTag our To tag for the responses of this transaction
   * @param onTerminated called once, when the transaction ends
   */
  constructor(
    readonly key: string,
    readonly req: SipRequest,
    readonly flow: Flow,
    readonly localTag: string,
    private readonly clock: Clock,
    private readonly onTerminated: (txn: ServerTransaction) => void,
  ) {
    this._state = this.isInvite ? 'proceeding' : 'trying';
  }

  get method(): string {
    return this.req.method;
  }

  get isInvite(): boolean {
    return this.req.method === 'INVITE';
  }

  get state(): ServerTxnState {
    return this._state;
  }

  /** No final response sent yet. */
  get pending(): boolean {
    return this._state === 'proceeding' || this._state === 'trying';
  }

  private to(next: ServerTxnState): void {
    this._state = move(this.isInvite ? INVITE_SERVER : NON_INVITE_SERVER, `${this.method} server transaction`, this._state, next);
  }

  private get reliable(): boolean {
    return this.flow.transport !== 'UDP';
  }

  /** Sends a provisional response (INVITE only); a retransmitted request gets it again. */
  provisional(response: Buffer): void {
    if (this._state !== 'proceeding') throw new Error(`no provisional response in state ${this._state}`);
    this.lastResponse = response;
    this.flow.send(response);
  }

  /**
   * Sends the final response.
   * - INVITE 2xx: Accepted for 64·T1 (timer L), absorbing retransmitted INVITEs and
   *   answering CANCEL while the dialog repeats the 2xx.
   * - INVITE failure: Completed, repeated until the ACK (timer G), for at most 64·T1 (H).
   * - non-INVITE: Completed, kept 64·T1 on UDP to answer retransmissions (J).
   */
  final(status: number, response: Buffer): void {
    this.lastResponse = response;
    if (this.isInvite && status < 300) this.to('accepted');
    else this.to('completed');
    this.flow.send(response);
    if (this.isInvite && status >= 300) {
      this.retransmitter = new Retransmitter(this.clock, {
        resend: () => this.flow.send(response),
        reliable: this.reliable,
        onTimeout: () => this.terminate(),
      });
    } else {
      this.lingerFor(this.isInvite || !this.reliable ? TIMER_64T1 : 0);
    }
  }

  /** The ACK for a failure: stop repeating it, and absorb further ACKs for T4 on UDP (timer I). */
  ack(): void {
    if (this._state !== 'completed') return;
    this.to('confirmed');
    this.retransmitter?.stop();
    this.lingerFor(this.reliable ? 0 : T4);
  }

  /** The same request again: repeat the last response; absorbed once a 2xx or ACK is past. */
  retransmitted(): void {
    if (this._state === 'accepted' || this._state === 'confirmed') return;
    if (this.lastResponse) this.flow.send(this.lastResponse);
  }

  terminate(): void {
    if (this._state === 'terminated') return;
    this.to('terminated');
    this.retransmitter?.stop();
    this.linger?.cancel();
    this.onTerminated(this);
  }

  private lingerFor(ms: number): void {
    if (ms === 0) this.terminate();
    else this.linger = this.clock.setTimer(ms, () => this.terminate());
  }
}

export type ClientTxnState = 'trying' | 'proceeding' | 'terminated';

const NON_INVITE_CLIENT: Moves<ClientTxnState> = {
  trying: ['proceeding', 'terminated'],
  proceeding: ['terminated'],
  terminated: [],
};

/** Status reported when no final response came within 64·T1 (timer F). */
export const TIMEOUT_STATUS = 408;

/** A request we sent (our BYE), repeated until its final response (timers E/F). */
export class ClientTransaction {
  private _state: ClientTxnState = 'trying';
  private readonly retransmitter: Retransmitter;
  private settle!: (status: number) => void;
  /** The final status: the peer's, TIMEOUT_STATUS after timer F, or the one given to terminate(). */
  readonly done: Promise<number>;

  constructor(
    readonly branch: string,
    request: Buffer,
    readonly flow: Flow,
    clock: Clock,
    private readonly onTerminated: (txn: ClientTransaction) => void,
  ) {
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
    flow.send(request);
    this.retransmitter = new Retransmitter(clock, {
      resend: () => flow.send(request),
      reliable: flow.transport !== 'UDP',
      onTimeout: () => this.terminate(TIMEOUT_STATUS),
    });
  }

  get state(): ClientTxnState {
    return this._state;
  }

  private to(next: ClientTxnState): void {
    this._state = move(NON_INVITE_CLIENT, 'client transaction', this._state, next);
  }

  /** A response matched this transaction's branch. */
  response(status: number): void {
    if (this._state === 'terminated') return;
    if (status >= 200) return this.terminate(status);
    if (this._state === 'trying') {
      this.to('proceeding');
      this.retransmitter.slowDown();
    }
  }

  terminate(status: number): void {
    if (this._state === 'terminated') return;
    this.to('terminated');
    this.retransmitter.stop();
    this.settle(status);
    this.onTerminated(this);
  }
}
