/** allowed_sources: CIDR matching for IPv4, IPv6 and IPv4-mapped IPv6, and the config check. */
import { describe, expect, it } from 'vitest';
import { cidrProblem, SourcePolicy } from '../../../src/sip/source-policy.js';

describe('SourcePolicy', () => {
  it('lets every address in when the list is empty', () => {
    const p = new SourcePolicy([]);
    for (const a of ['127.0.0.1', '203.0.113.9', '::1', '2001:db8::1']) expect(p.allows(a), a).toBe(true);
  });

  it.each([
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['192.0.2.0/24', '192.0.2.255', true],
    ['192.0.2.0/24', '192.0.3.0', false],
    ['127.0.0.1/32', '127.0.0.1', true],
    ['127.0.0.1/32', '127.0.0.2', false],
    ['127.0.0.1', '127.0.0.1', true],
    ['127.0.0.1', '127.0.0.2', false],
    ['0.0.0.0/0', '198.51.100.7', true],
    ['2001:db8::/32', '2001:db8:ffff::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::1/128', '::1', true],
    ['::1/128', '::2', false],
    // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
    ['192.0.2.0/24', '::ffff:192.0.2.40', true],
    ['192.0.2.0/24', '::ffff:198.51.100.1', false],
    // Families do not cross.
    ['10.0.0.0/8', '::1', false],
    ['::1/128', '127.0.0.1', false],
  ])('%s %s → %s', (range, address, allowed) => {
    expect(new SourcePolicy([range]).allows(address)).toBe(allowed);
  });

  it('matches against every range of the list', () => {
    const p = new SourcePolicy(['10.0.0.0/8', '2001:db8::/32']);
    expect([p.allows('10.1.1.1'), p.allows('2001:db8::5'), p.allows('192.0.2.1')]).toEqual([true, true, false]);
  });

  it('refuses what is not an address', () => {
    expect(new SourcePolicy(['10.0.0.0/8']).allows('')).toBe(false);
    expect(new SourcePolicy(['10.0.0.0/8']).allows('not-an-address')).toBe(false);
  });
});

describe('cidrProblem', () => {
  it.each(['10.0.0.0/8', '2001:db8::/32', '192.0.2.1', '::1', '0.0.0.0/0'])('accepts %s', (r) => {
    expect(cidrProblem(r)).toBeUndefined();
  });
  it.each([
    ['10.0.0.0/33', 'prefix length must be 0 to 32'],
    ['2001:db8::/129', 'prefix length must be 0 to 128'],
    ['10.0.0.0/x', 'prefix length'],
    ['example.org/24', 'is not an address'],
    ['300.1.1.1', 'is not an address'],
    ['', 'is not an address'],
  ])('refuses %s', (r, why) => {
    expect(cidrProblem(r)).toContain(why);
  });
});
