/**
 * RFC 3261 retransmission over an unreliable transport (§17.1.2.2, §17.2.1, §13.3.1.4):
 * send again after T1, then at doubling intervals capped at T2, and give up after 64·T1.
 * One helper serves every path that repeats a message: a non-2xx final response until the
 * ACK (timers G/H), a 2xx until the ACK, and our own BYE until its answer (timers E/F).
 * On a reliable transport nothing is repeated but the give-up timer still runs.
 */
import type { Clock, Timer } from './clock.js';

/** Round-trip estimate (§17.1.1.1). */
export const T1 = 500;
/** Longest retransmission interval. */
export const T2 = 4000;
/** How long the network may hold a message (§17.1.2.2). */
export const T4 = 5000;
/** Timers B, F, H, J, L: 64·T1. */
export const TIMER_64T1 = 64 * T1;

export interface RetransmitOptions {
  /** Sends the message once more. */
  readonly resend: () => void;
  /** Reliable transports (TCP) get no repeats, only the give-up timer. */
  readonly reliable: boolean;
  /** Called once when 64·T1 has passed without stop(). */
  readonly onTimeout: () => void;
}

export class Retransmitter {
  private interval = T1;
  private repeat: Timer | null = null;
  private giveUp: Timer | null;

  constructor(private readonly clock: Clock, private readonly opts: RetransmitOptions) {
    if (!opts.reliable) this.armRepeat();
    this.giveUp = clock.setTimer(TIMER_64T1, () => {
      this.giveUp = null;
      this.stop();
      opts.onTimeout();
    });
  }

  private armRepeat(): void {
    this.repeat = this.clock.setTimer(this.interval, () => {
      this.opts.resend();
      this.interval = Math.min(this.interval * 2, T2);
      this.armRepeat();
    });
  }

  /**
   * A provisional answer arrived (§17.1.2.2): from now on repeat every T2 only.
   */
  slowDown(): void {
    this.interval = T2;
  }

  /** The answer (or ACK) arrived, or the owner ended: no more repeats, no timeout. */
  stop(): void {
    this.repeat?.cancel();
    this.repeat = null;
    this.giveUp?.cancel();
    this.giveUp = null;
  }
}
