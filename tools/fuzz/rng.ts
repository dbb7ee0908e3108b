/**
 * The fuzzer's randomness: one seeded generator per input, so that input `i` of a run with
 * seed `S` is the same bytes on every machine and can be replayed alone.
 */
import { prng } from '../../tests/support/fuzz.js';

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = prng(seed);
  }

  /** The seed of input `index` in a run seeded with `runSeed`. */
  static inputSeed(runSeed: number, index: number): number {
    // Two rounds of a 32-bit integer hash, so that neighbouring indices are unrelated.
    let h = (runSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
    for (let r = 0; r < 2; r++) {
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
      h = (h ^ (h >>> 16)) >>> 0;
    }
    return h;
  }

  float(): number {
    return this.next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A length skewed towards small values, with the occasional large one. */
  size(max: number): number {
    const r = this.next();
    if (r < 0.6) return this.int(Math.min(max, 16) + 1);
    if (r < 0.9) return this.int(Math.min(max, 512) + 1);
    return this.int(max + 1);
  }
}
