/**
 * One answer per INVITE across the recorders that share a register. A balancer that fails an
 * INVITE over when a recorder does not reply in time (deploy/kamailio/kamailio.cfg: no reply
 * within FR_TIMER_MS) sends a copy of it to the next recorder, while the first, only slow,
 * may still answer it: both would record the call. The copies are merged requests (RFC 3261
 * §8.2.2.2: the same Call-ID, From tag and CSeq reaching the UAS by different paths), which
 * are answered 482. Across recorders that check needs shared state: a lease in the register
 * named by a hash of those three (a Call-ID may carry addresses), taken by the recorder that
 * admits the INVITE and given back when the call ends. The holder names the dialog too, so a
 * second copy reaching the same recorder is refused as well.
 *
 * A register that cannot be reached does not stop a call: the claim then counts as taken
 * (recording twice beats recording nothing), and the failure is logged.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { RecordingIndex } from '../index/index.js';

/** Longer than any balancer's INVITE transaction (RFC 3261 Timer B: 32 s); given back at call end. */
export const INVITE_CLAIM_TTL_MS = 5 * 60_000;

/** The lease name of an initial INVITE: a hash of its Call-ID, From tag and CSeq number. */
export function inviteClaimName(callId: string, fromTag: string, cseq: number): string {
  return `invite:${createHash('sha256').update(`${callId}\n${fromTag}\n${cseq}`).digest('hex')}`;
}

export class InviteClaims {
  constructor(
    private readonly register: Pick<RecordingIndex, 'claimLease' | 'releaseLease'>,
    private readonly node: string,
    private readonly log: Logger,
    private readonly ttlMs = INVITE_CLAIM_TTL_MS,
  ) {}

  /** False when another recorder, or another dialog here, has admitted the same INVITE. */
  async claim(name: string, dialogId: string): Promise<boolean> {
    try {
      return await this.register.claimLease(name, this.holder(dialogId), this.ttlMs);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not check the INVITE against the other recorders; taking the call');
      return true;
    }
  }

  /** Gives the claim back (the call ended, or was refused after the claim). */
  release(name: string, dialogId: string): void {
    this.register.releaseLease(name, this.holder(dialogId)).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'could not give back an INVITE claim; it runs out by itself'));
  }

  private holder(dialogId: string): string {
    // The dialog id holds both tags and the Call-ID: hashed, it names the dialog in a bounded, neutral form.
    return `${this.node}:${createHash('sha256').update(dialogId).digest('hex').slice(0, 32)}`;
  }
}
