/**
 * Retention policies: which rule a recording falls under and when its audio and its
 * metadata expire. Rules are tried in config order; the first whose every `match` key
 * matches wins; none matching gives the [retention] defaults (policy "default").
 * Within one key a list means "any of these". Periods run from the end of the call.
 */
import type { Config, RetentionPolicyConfig } from '../config/schema.js';
import { addDuration } from '../config/duration.js';
import { numberMatchesPattern } from '../privacy/numbers.js';
import type { RecordingEntry, RecordingMeta } from '../types.js';

export interface RetentionDecision {
  policy: string;
  audioExpiresAt: number;
  metadataExpiresAt: number;
  erasure: 'allowed' | 'refused';
  erasureRefusedReason?: string;
}

export type RetentionConfig = Config['retention'];
export const DEFAULT_POLICY = 'default';

/** The fields rules match on. */
export type RetentionSubject = Pick<RecordingMeta, 'serviceNumber' | 'trunk' | 'team' | 'extensions'>;

export interface PolicyOptions {
  /** Country code used to compare national and international spellings of service numbers. */
  defaultCountry?: string;
}

function asList(v: string | readonly string[] | undefined): readonly string[] | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? [v] : v;
}


export function policyMatches(policy: RetentionPolicyConfig, s: RetentionSubject, opts: PolicyOptions = {}): boolean {
  const m = policy.match;
  const services = asList(m.service_number);
  if (services && !(s.serviceNumber !== undefined && services.some((p) => numberMatchesPattern(p, s.serviceNumber!, opts.defaultCountry ?? '358')))) return false;
  const trunks = asList(m.trunk);
  if (trunks && !(s.trunk !== undefined && trunks.includes(s.trunk))) return false;
  const teams = asList(m.team);
  if (teams && !(s.team !== undefined && teams.includes(s.team))) return false;
  if (m.metadata) {
    for (const [k, v] of Object.entries(m.metadata)) if (s.extensions?.[k] !== v) return false;
  }
  return true;
}

export function findPolicy(s: RetentionSubject, retention: RetentionConfig, opts: PolicyOptions = {}): RetentionPolicyConfig | undefined {
  return retention.policy.find((p) => policyMatches(p, s, opts));
}

export function decideRetention(entry: RetentionSubject, endedAt: number, retention: RetentionConfig, opts: PolicyOptions = {}): RetentionDecision {
  const p = findPolicy(entry, retention, opts);
  const erasure = p?.erasure ?? retention.erasure;
  const decision: RetentionDecision = {
    policy: p ? p.name : DEFAULT_POLICY,
    audioExpiresAt: addDuration(endedAt, p ? p.audio : retention.audio),
    metadataExpiresAt: addDuration(endedAt, p ? p.metadata : retention.metadata),
    erasure,
  };
  if (erasure === 'refused') {
    const reason = (p ? p.erasure_refused_reason : undefined) ?? retention.erasure_refused_reason;
    decision.erasureRefusedReason = reason ?? 'the retention policy does not allow erasure';
  }
  return decision;
}

/** The erasure rule of an entry's policy, by the name stored on the entry (rules may have moved). */
export function erasureRule(entry: RecordingEntry, retention: RetentionConfig, opts: PolicyOptions = {}): { erasure: 'allowed' | 'refused'; reason?: string; policy: string } {
  const named = entry.retention ? retention.policy.find((p) => p.name === entry.retention!.policy) : undefined;
  if (named) {
    return (named.erasure ?? retention.erasure) === 'refused'
      ? { erasure: 'refused', reason: named.erasure_refused_reason ?? retention.erasure_refused_reason ?? 'the retention policy does not allow erasure', policy: named.name }
      : { erasure: 'allowed', policy: named.name };
  }
  const d = decideRetention(entry, Date.parse(entry.endedAt), retention, opts);
  return d.erasure === 'refused' ? { erasure: 'refused', reason: d.erasureRefusedReason!, policy: d.policy } : { erasure: 'allowed', policy: d.policy };
}

/** The entry with its retention filled in from the policy it falls under. */
export function withRetention(entry: RecordingEntry, retention: RetentionConfig, opts: PolicyOptions = {}): RecordingEntry {
  const ended = Date.parse(entry.endedAt);
  const endedAt = Number.isFinite(ended) ? ended : entry.answeredAt + entry.durationMs;
  const d = decideRetention(entry, endedAt, retention, opts);
  return {
    ...entry,
    retention: {
      policy: d.policy,
      audioExpiresAt: new Date(d.audioExpiresAt).toISOString(),
      metadataExpiresAt: new Date(d.metadataExpiresAt).toISOString(),
    },
  };
}
