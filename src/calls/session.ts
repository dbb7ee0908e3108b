/**
 * One recorded call: the single owner of its state. The state machine is explicit and
 * throws on an illegal move:
 *
 *   offered → answered → recording ⇄ paused → ended
 *
 * ("answered" lasts from the 200 OK until the ACK; a call offered paused goes
 * answered → paused.) The session holds clear numbers only in memory, and only while it
 * builds the masked RecordingMeta at answer time; the spool gets the masked meta.
 */
import type { SpoolWriter } from '../spool/writer.js';
import type { RecordingMeta } from '../types.js';
import type { Leg } from './leg.js';
import type { RecordingMetadata } from '../sip/metadata.js';
import type { SdpOffer } from '../sip/sdp.js';
import type { Logger } from '../log.js';

export type CallState = 'offered' | 'answered' | 'recording' | 'paused' | 'ended';

const MOVES: Record<CallState, readonly CallState[]> = {
  offered: ['answered', 'ended'],
  answered: ['recording', 'paused', 'ended'],
  recording: ['paused', 'ended'],
  paused: ['recording', 'ended'],
  ended: [],
};

export class IllegalTransition extends Error {
  constructor(from: CallState, to: CallState) {
    super(`call state cannot move from ${from} to ${to}`);
  }
}

/** What is stored about the call besides its legs (the legs carry their own descriptors). */
export type CallDetails = Omit<RecordingMeta, 'legs'>;

export class CallSession {
  private _state: CallState = 'offered';
  readonly id: string;
  readonly dialogId: string;
  readonly spool: SpoolWriter;
  readonly log: Logger;
  readonly legs: Leg[] = [];
  details: CallDetails;
  /** The SIPREC metadata as it stands after every update (clear numbers: memory only). */
  metadata: RecordingMetadata | undefined;
  /** The offer we last answered: a refresh without SDP is answered from it. */
  lastOffer: SdpOffer | undefined;
  /** SDP o= version we answer with; bumped on every new answer. */
  sdpVersion = 1;
  /** Epoch ms of the last pause/resume or the answer: inactivity counts from the latest. */
  lastStateChangeAt: number;
  /** Why we end the call ourselves (inactivity, shutdown), before the dialog reports it. */
  endReason: string | null = null;
  /** An in-dialog OPTIONS to the peer of this paused call awaits its answer. */
  probing = false;
  /** Epoch ms the peer last answered such a probe (0: never). */
  private peerAnsweredAt = 0;

  constructor(opts: { id: string; dialogId: string; spool: SpoolWriter; details: CallDetails; metadata?: RecordingMetadata; log: Logger }) {
    this.id = opts.id;
    this.dialogId = opts.dialogId;
    this.spool = opts.spool;
    this.details = opts.details;
    this.metadata = opts.metadata;
    this.log = opts.log;
    this.lastStateChangeAt = opts.details.answeredAt;
  }

  /** The masked RecordingMeta the spool carries: the details plus each leg's descriptor. */
  get meta(): RecordingMeta {
    return { ...this.details, legs: this.legs.map((l) => l.descriptor) };
  }

  /** The leg of an m-line index, if that m-line is recorded. */
  leg(index: number): Leg | undefined {
    return this.legs.find((l) => l.index === index);
  }

  get state(): CallState {
    return this._state;
  }

  transition(to: CallState): void {
    if (!MOVES[this._state].includes(to)) throw new IllegalTransition(this._state, to);
    this._state = to;
  }

  get paused(): boolean {
    return this._state === 'paused';
  }

  get live(): boolean {
    return this._state !== 'ended';
  }

  /** The ACK arrived (or an update came first): the call is being recorded. */
  confirm(): void {
    if (this._state === 'answered') this.transition('recording');
  }

  /** Pauses or resumes capture: the spool gets the event, receivers drop RTP meanwhile. */
  setPaused(paused: boolean, now: number): void {
    if (paused === this.paused || !this.live) return;
    this.transition(paused ? 'paused' : 'recording');
    this.lastStateChangeAt = now;
    this.spool.appendEvent(now, { kind: paused ? 'pause' : 'resume' });
    for (const l of this.legs) l.receiver.setPaused(paused);
  }

  /** The peer answered a probe of ours: a sign of life while paused. */
  peerAnswered(now: number): void {
    this.peerAnsweredAt = now;
  }

  /** Epoch ms of the last sign of life: an RTP packet, the answer, a pause change, or the peer answering a probe. */
  lastActivity(): number {
    let t = Math.max(this.lastStateChangeAt, this.peerAnsweredAt);
    for (const l of this.legs) {
      const p = l.receiver.lastPacketAt;
      if (p !== null && p > t) t = p;
    }
    return t;
  }
}
