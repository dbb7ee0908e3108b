/**
 * The load generator's lateness: how far behind its schedule each packet was sent.
 *
 * One fixed histogram per generator thread (no allocation per packet), merged by the bench:
 * 0.1 ms steps up to 100 ms, 10 ms steps up to 10.1 s, and one bucket above. Quantiles are a
 * bucket's upper bound; the maximum is kept exactly. The coarse buckets of the bench's older
 * results (1, 2, 5, …, 160 ms) fall on bucket edges, so they are exact too.
 */

const FINE_STEP_MS = 0.1;
const FINE_BUCKETS = 1000;
const COARSE_STEP_MS = 10;
const COARSE_BUCKETS = 1000;
const FINE_END_MS = FINE_STEP_MS * FINE_BUCKETS;
export const LATENESS_BUCKETS = FINE_BUCKETS + COARSE_BUCKETS + 1;

/** The coarse histogram of the JSON output: upper bounds in ms, then one bucket above the last. */
export const COARSE_LATE_MS = [1, 2, 5, 10, 20, 40, 80, 160];

function bucketOf(ms) {
  // Packets are sent when due or after, never before; a clock read that went back is 0.
  if (!(ms > 0)) return 0;
  if (ms <= FINE_END_MS) return Math.max(0, Math.ceil(ms / FINE_STEP_MS) - 1);
  return FINE_BUCKETS + Math.min(COARSE_BUCKETS, Math.ceil((ms - FINE_END_MS) / COARSE_STEP_MS) - 1);
}

/** The upper bound (ms) of bucket `i`; Infinity for the last. */
function upperOf(i) {
  if (i < FINE_BUCKETS) return round1((i + 1) * FINE_STEP_MS);
  if (i < FINE_BUCKETS + COARSE_BUCKETS) return FINE_END_MS + (i - FINE_BUCKETS + 1) * COARSE_STEP_MS;
  return Infinity;
}

const round1 = (x) => Math.round(x * 10) / 10;

export class LatenessHistogram {
  constructor(counts = new Float64Array(LATENESS_BUCKETS), maxMs = 0) {
    this.counts = counts;
    this.maxMs = maxMs;
  }

  record(ms) {
    this.counts[bucketOf(ms)]++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** `count` packets `ms` late (a histogram kept elsewhere, as the C generator keeps one). */
  recordMany(ms, count) {
    this.counts[bucketOf(ms)] += count;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** Adds another thread's histogram ({ counts, maxMs } as posted). */
  merge(o) {
    for (let i = 0; i < LATENESS_BUCKETS; i++) this.counts[i] += o.counts[i];
    if (o.maxMs > this.maxMs) this.maxMs = o.maxMs;
  }

  get total() {
    let n = 0;
    for (let i = 0; i < LATENESS_BUCKETS; i++) n += this.counts[i];
    return n;
  }

  /** The lateness (ms) that a share `q` of the packets did not exceed (a bucket's upper bound, at most the maximum); null when empty. */
  quantile(q) {
    const n = this.total;
    if (n === 0) return null;
    const rank = Math.max(1, Math.ceil(q * n));
    let seen = 0;
    for (let i = 0; i < LATENESS_BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(upperOf(i), round1(this.maxMs));
    }
    return round1(this.maxMs);
  }

  /** Counts per coarse bucket: { le1, le2, …, le160, over160 }. */
  coarse() {
    const out = {};
    let i = 0;
    for (const edge of COARSE_LATE_MS) {
      let n = 0;
      for (; i < LATENESS_BUCKETS && upperOf(i) <= edge; i++) n += this.counts[i];
      out[`le${edge}`] = n;
    }
    let rest = 0;
    for (; i < LATENESS_BUCKETS; i++) rest += this.counts[i];
    out[`over${COARSE_LATE_MS[COARSE_LATE_MS.length - 1]}`] = rest;
    return out;
  }
}
