/**
 * A token bucket per source address: `perSecond` sustained, `burst` at once. The limiter
 * reads time only through the `now` it is given (milliseconds), so tests move it by hand.
 * Buckets that have refilled are forgotten once there are many, so a flood from many
 * addresses cannot grow the table without bound.
 */

interface Bucket {
  tokens: number;
  at: number;
}

/** Past this many buckets, full ones are swept out. */
const SWEEP_AT = 4096;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {}

  /** Takes one token for `source`: true when allowed. */
  take(source: string): boolean {
    const t = this.now();
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(t);
      b = { tokens: this.burst, at: t };
      this.buckets.set(source, b);
    } else {
      b.tokens = this.refilled(b, t);
      b.at = t;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Whole seconds until `source` has a token again (at least 1), for Retry-After. */
  retryAfterSeconds(source: string): number {
    const b = this.buckets.get(source);
    if (!b) return 1;
    const missing = 1 - this.refilled(b, this.now());
    return Math.max(1, Math.ceil(missing / this.perSecond));
  }

  get tracked(): number {
    return this.buckets.size;
  }

  private refilled(b: Bucket, t: number): number {
    return Math.min(this.burst, b.tokens + (Math.max(0, t - b.at) / 1000) * this.perSecond);
  }

  private sweep(t: number): void {
    for (const [k, b] of this.buckets) if (this.refilled(b, t) >= this.burst) this.buckets.delete(k);
  }
}
