import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadConfigFile, parseConfigText } from '../../../src/config/load.js';
import { decideRetention, withRetention, erasureRule } from '../../../src/retention/policy.js';
import { numberMatchesPattern } from '../../../src/privacy/numbers.js';
const serviceNumberMatches = (p: string, v: string): boolean => numberMatchesPattern(p, v, '358');
import { makeEntry } from '../index/entry.js';

const END = Date.UTC(2026, 0, 31, 12, 0, 0);
const profile = (name: string) => fileURLToPath(new URL(`../../../config/profiles/${name}.toml`, import.meta.url));

const RULES = `
[retention]
audio = "6 months"
metadata = "3 years 3 months"
[[retention.policy]]
name = "complaints"
match = { service_number = ["0200 12345", "+358800*"] }
audio = "12 months"
metadata = "5 years"
[[retention.policy]]
name = "sales-team"
match = { team = "sales", trunk = "t1" }
audio = "30 days"
metadata = "1 year"
erasure = "refused"
erasure_refused_reason = "contract evidence"
[[retention.policy]]
name = "tagged"
match = { metadata = { "x-retention" = "short" } }
audio = "10s"
metadata = "20s"
`;

describe('decideRetention', () => {
  const retention = parseConfigText(RULES, 'rules.toml').config.retention;

  it('falls back to the defaults, calendar-aware', () => {
    const d = decideRetention({}, END, retention);
    expect(d.policy).toBe('default');
    expect(new Date(d.audioExpiresAt).toISOString()).toBe('2026-07-31T12:00:00.000Z');
    expect(new Date(d.metadataExpiresAt).toISOString()).toBe('2029-04-30T12:00:00.000Z');
    expect(d.erasure).toBe('allowed');
  });

  it('matches service numbers in any spelling and by prefix', () => {
    expect(decideRetention({ serviceNumber: '+35820012345' }, END, retention).policy).toBe('complaints');
    expect(decideRetention({ serviceNumber: '0800 123 456' }, END, retention).policy).toBe('complaints');
    expect(decideRetention({ serviceNumber: '+35820012346' }, END, retention).policy).toBe('default');
    expect(serviceNumberMatches('+358800*', '+358900123')).toBe(false);
  });

  it('needs every key of a rule to match, and gives separate audio and metadata periods', () => {
    expect(decideRetention({ team: 'sales' }, END, retention).policy).toBe('default');
    const d = decideRetention({ team: 'sales', trunk: 't1' }, END, retention);
    expect(d.policy).toBe('sales-team');
    expect(d.audioExpiresAt - END).toBe(30 * 86_400_000);
    expect(new Date(d.metadataExpiresAt).toISOString()).toBe('2027-01-31T12:00:00.000Z');
    expect(d).toMatchObject({ erasure: 'refused', erasureRefusedReason: 'contract evidence' });
  });

  it('matches SIPREC metadata fields, with second-scale periods', () => {
    const d = decideRetention({ extensions: { 'x-retention': 'short' } }, END, retention);
    expect(d).toMatchObject({ policy: 'tagged', audioExpiresAt: END + 10_000, metadataExpiresAt: END + 20_000 });
  });

  it('withRetention fills the entry from its end time, and erasureRule follows the named policy', () => {
    const e = withRetention(makeEntry('w1', END - 60_000, { team: 'sales', trunk: 't1' }), retention);
    expect(e.retention).toEqual({ policy: 'sales-team', audioExpiresAt: new Date(END + 30 * 86_400_000).toISOString(), metadataExpiresAt: '2027-01-31T12:00:00.000Z' });
    expect(erasureRule(e, retention)).toEqual({ erasure: 'refused', reason: 'contract evidence', policy: 'sales-team' });
  });
});

describe('seed profiles', () => {
  const sample = makeEntry('s1', END - 60_000, { serviceNumber: '+358200100' });

  it('Posti: audio six months, event data 3 years 3 months, last three digits hidden, erasure allowed', () => {
    const c = loadConfigFile(profile('posti')).config;
    const d = decideRetention(sample, END, c.retention);
    expect(new Date(d.audioExpiresAt).toISOString()).toBe('2026-07-31T12:00:00.000Z');
    expect(new Date(d.metadataExpiresAt).toISOString()).toBe('2029-04-30T12:00:00.000Z');
    expect(d.erasure).toBe('allowed');
    expect(c.privacy.mask_digits).toBe(3);
  });

  it('PostNord: one month for the recording and its data, no number kept', () => {
    const c = loadConfigFile(profile('postnord')).config;
    const d = decideRetention(sample, END, c.retention);
    expect(new Date(d.audioExpiresAt).toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(d.metadataExpiresAt).toBe(d.audioExpiresAt);
    expect(c.privacy.mask_digits).toBe(15);
  });

  it('Valtiokonttori: twelve months, erasure refused as a statutory task', () => {
    const c = loadConfigFile(profile('valtiokonttori')).config;
    const d = decideRetention(sample, END, c.retention);
    expect(new Date(d.audioExpiresAt).toISOString()).toBe('2027-01-31T12:00:00.000Z');
    expect(d.erasure).toBe('refused');
    expect(d.erasureRefusedReason).toMatch(/statutory task/);
  });
});
