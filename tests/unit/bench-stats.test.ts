/** The bench's summaries (bench/stats.mjs): every script's medians, ranges and quantiles. */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the bench, without types
import { median, quantile, showSpread, spread } from '../../bench/stats.mjs';

describe('bench statistics', () => {
  it('the median is the middle value, or the mean of the two middle ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    const xs = [5, 9, 1];
    median(xs);
    expect(xs).toEqual([5, 9, 1]);
  });

  it('a spread is the median and range, formatted as the tables print it', () => {
    const s = spread([1.234, 3.456, 2.345, 9.999], (x: number) => Math.round(x * 10) / 10);
    expect(s).toEqual({ median: 2.9, min: 1.2, max: 10 });
    expect(showSpread(s)).toBe('2.9 [1.2–10]');
  });

  it('quantiles take the nearest rank below; none of nothing', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(quantile(v, 0.5)).toBe(51);
    expect(quantile(v, 0.99)).toBe(100);
    expect(quantile(v, 1)).toBe(100);
    expect(quantile([], 0.5)).toBeNull();
  });
});
