/** The per-source token bucket, on a time that moves only when the test says. */
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../src/sip/rate-limit.js';

function limiter(perSecond: number, burst: number) {
  const time = { now: 0 };
  return { time, rl: new RateLimiter(perSecond, burst, () => time.now) };
}

const takeN = (rl: RateLimiter, source: string, n: number) => Array.from({ length: n }, () => rl.take(source)).filter(Boolean).length;

describe('RateLimiter', () => {
  it('allows a burst at once, then nothing until tokens come back', () => {
    const { rl } = limiter(2, 5);
    expect(takeN(rl, 'a', 8)).toBe(5);
    expect(rl.take('a')).toBe(false);
  });

  it('refills at the sustained rate, never above the burst', () => {
    const { time, rl } = limiter(2, 5);
    takeN(rl, 'a', 5);
    time.now += 500;
    expect(takeN(rl, 'a', 3)).toBe(1);
    time.now += 60_000;
    expect(takeN(rl, 'a', 10)).toBe(5);
  });

  it('keeps one bucket per source', () => {
    const { rl } = limiter(1, 2);
    expect(takeN(rl, '192.0.2.1', 3)).toBe(2);
    expect(takeN(rl, '192.0.2.2', 3)).toBe(2);
    expect(takeN(rl, '2001:db8::1', 1)).toBe(1);
  });

  it('says how long until the next token, in whole seconds, at least 1', () => {
    const { time, rl } = limiter(0.25, 1);
    rl.take('a');
    expect(rl.retryAfterSeconds('a')).toBe(4);
    time.now += 2500;
    expect(rl.retryAfterSeconds('a')).toBe(2);
    expect(rl.retryAfterSeconds('never-seen')).toBe(1);
    const fast = limiter(100, 1).rl;
    fast.take('b');
    expect(fast.retryAfterSeconds('b')).toBe(1);
  });

  it('forgets refilled buckets once there are many, so a flood from many addresses stays bounded', () => {
    const { time, rl } = limiter(10, 2);
    for (let i = 0; i < 4096; i++) rl.take(`10.0.${i >> 8}.${i & 255}`);
    expect(rl.tracked).toBe(4096);
    time.now += 1000;
    rl.take('192.0.2.1');
    expect(rl.tracked).toBe(1);
  });
});
