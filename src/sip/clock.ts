/**
 * The time source of the SIP layer. The user agent arms its transaction and dialog timers
 * only through a Clock, so tests can drive every timer of RFC 3261 without waiting.
 */

/** An armed timer; cancelling it twice, or after it fired, does nothing. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): Timer;
}

/** The process's own timers. */
export const systemClock: Clock = {
  setTimer(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};
