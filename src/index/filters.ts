/**
 * A search as people give it (the CLI's flags, the API's query) → an index query. Agents are
 * named by id or by their `[[agents]]` name; service numbers and customer numbers in any
 * spelling (a customer number is matched through its keyed hash, never stored or compared
 * in clear).
 */
import type { Config } from '../config/schema.js';
import { normalizeE164, type NumberHasher } from '../privacy/numbers.js';
import type { RecordingStatus } from '../types.js';
import type { ListQuery } from './index.js';

export interface RecordingFilters {
  from?: number;
  to?: number;
  agent?: string;
  team?: string;
  service?: string;
  group?: string;
  status?: RecordingStatus;
  /** A customer number in any form (subject search). */
  number?: string;
}

export const RECORDING_STATUSES: readonly RecordingStatus[] = ['complete', 'truncated'];

/** A customer number that cannot be a phone number: nothing to look up. */
export class NotANumberError extends Error {
  constructor() {
    super('that is not a phone number (an extension or short code is never stored as a customer number)');
    this.name = 'NotANumberError';
  }
}

export function toListQuery(f: RecordingFilters, config: Pick<Config, 'agents' | 'privacy'>, hasher?: Pick<NumberHasher, 'hash'>): ListQuery {
  const q: ListQuery = {};
  if (f.from !== undefined) q.from = f.from;
  if (f.to !== undefined) q.to = f.to;
  if (f.agent !== undefined) q.agentId = config.agents.find((a) => a.id === f.agent || a.name === f.agent)?.id ?? f.agent;
  if (f.team !== undefined) q.team = f.team;
  if (f.group !== undefined) q.groupId = f.group;
  // Service numbers are stored normalised when they are phone numbers; accept any spelling.
  if (f.service !== undefined) q.serviceNumber = normalizeE164(f.service, config.privacy.default_country) ?? f.service;
  if (f.status !== undefined) q.status = f.status;
  if (f.number !== undefined) {
    const e164 = normalizeE164(f.number, config.privacy.default_country);
    if (e164 === null || !hasher) throw new NotANumberError();
    q.numberHash = hasher.hash(e164);
  }
  return q;
}
