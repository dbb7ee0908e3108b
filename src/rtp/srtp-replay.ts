/**
 * SRTP replay protection (RFC 3711 §3.3.2) and the receiver's packet index estimate
 * (§3.3.1, Appendix A). Both are pure state over numbers; srtp.ts calls `check` before
 * the packet is authenticated and `accept` only after, so a forged packet moves nothing.
 */

/** Smallest window RFC 3711 §3.3.2 allows; RFC 4568 WSH may ask for more. */
export const MIN_REPLAY_WINDOW = 64;
export const MAX_REPLAY_WINDOW = 32_768;
export const DEFAULT_REPLAY_WINDOW = 128;

/**
 * A sliding window over packet indices (48-bit SRTP indices or 31-bit SRTCP indices,
 * exact in a double): one slot per index modulo the window size, and the highest index
 * accepted so far.
 */
export class ReplayWindow {
  readonly size: number;
  private readonly seen: Uint8Array;
  private top = -1;

  constructor(size: number = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < MIN_REPLAY_WINDOW || size > MAX_REPLAY_WINDOW) {
      throw new RangeError(`replay window must be ${MIN_REPLAY_WINDOW}..${MAX_REPLAY_WINDOW} packets`);
    }
    this.size = size;
    this.seen = new Uint8Array(size);
  }

  /** True when `index` is new: ahead of the window, or inside it and not seen yet. */
  check(index: number): boolean {
    if (index > this.top) return true;
    if (this.top - index >= this.size) return false;
    return this.seen[index % this.size] === 0;
  }

  /** Records an authenticated packet's index. */
  accept(index: number): void {
    if (index > this.top) {
      const gap = index - this.top;
      if (gap >= this.size || this.top < 0) this.seen.fill(0);
      else for (let i = this.top + 1; i < index; i++) this.seen[i % this.size] = 0;
      this.top = index;
    }
    this.seen[index % this.size] = 1;
  }

  /** Highest index accepted, -1 before the first. */
  get highest(): number {
    return this.top;
  }
}

/**
 * RFC 3711 Appendix A: the rollover counter a packet with sequence `seq` belongs to,
 * given the current `roc` and the highest sequence `sl` seen under it. Returns -1 when
 * the guess would precede the first rollover period (a packet from before the stream's
 * start, which cannot be authentic for a fresh key).
 */
export function guessRoc(roc: number, sl: number, seq: number): number {
  if (sl < 0x8000) {
    return seq - sl > 0x8000 ? roc - 1 : roc;
  }
  return sl - 0x8000 > seq ? (roc + 1) % 0x100000000 : roc;
}
