/**
 * The bench's summaries of repeated figures, written once: every script reports the median
 * and range of its rounds, and latencies as quantiles.
 */

/** The median: the middle value, or the mean of the two middle ones for an even count. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Median, least and greatest of `xs`, each passed through `fmt` (rounding, say). */
export function spread(xs, fmt = (x) => x) {
  return { median: fmt(median(xs)), min: fmt(Math.min(...xs)), max: fmt(Math.max(...xs)) };
}

/** `median [min–max]`, as the tables print a spread. */
export const showSpread = (s) => `${s.median} [${s.min}–${s.max}]`;

/** The q-quantile by the nearest rank below (p99 of 100 values is the 100th); null for none. */
export function quantile(values, q) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}
