/**
 * The secondary-index keys of a recording, as pure functions. Every ordered index is one
 * key range in a single LMDB database: [kind, value, startMs, id] for the lookups (so each
 * one is also ordered by time, and a time range inside it is one contiguous range) and
 * [kind, expiresAtMs, id] for the two expiry indexes. Keeping this pure lets the index
 * compute the old and new key sets of an update and touch only the difference.
 */
import type { RecordingEntry } from '../types.js';

export type IndexKey = readonly (string | number)[];

/** Lookup kinds, most selective first: the planner picks the first the query names. */
export const LOOKUP_KINDS = {
  numberHash: 'h',
  groupId: 'r',
  agentId: 'a',
  serviceNumber: 'v',
  team: 'g',
  status: 's',
} as const;
export type LookupField = keyof typeof LOOKUP_KINDS;
export const TIME_KIND = 't';
export const AUDIO_EXPIRY_KIND = 'xa';
/** [kind, masterKeyId, id]: which recordings' data keys each master key wraps (rotation, retirement). */
export const DATA_KEY_KIND = 'mk';
export const METADATA_EXPIRY_KIND = 'xm';

/** Index values longer than this are not indexed (LMDB keys are limited to ~2 KB). */
export const MAX_KEY_VALUE_CHARS = 512;

export function startMsOf(e: Pick<RecordingEntry, 'answeredAt' | 'startedAt'>): number {
  if (Number.isFinite(e.answeredAt)) return e.answeredAt;
  const t = Date.parse(e.startedAt);
  return Number.isFinite(t) ? t : 0;
}

/**
 * When the audio expires, taking a legal hold into account: null while held without an end
 * date (and once the audio is gone); a hold with an end date pushes expiry to that date.
 */
export function effectiveAudioExpiry(e: RecordingEntry): number | null {
  if (e.audioPurgedAt !== undefined || !e.retention) return null;
  return applyHold(Date.parse(e.retention.audioExpiresAt), e);
}

export function effectiveMetadataExpiry(e: RecordingEntry): number | null {
  if (!e.retention) return null;
  return applyHold(Date.parse(e.retention.metadataExpiresAt), e);
}

function applyHold(expiresAt: number, e: RecordingEntry): number | null {
  if (!Number.isFinite(expiresAt)) return null;
  if (!e.hold) return expiresAt;
  if (e.hold.until === undefined) return null;
  const until = Date.parse(e.hold.until);
  return Number.isFinite(until) ? Math.max(expiresAt, until) : null;
}

function indexable(v: string | undefined): v is string {
  return v !== undefined && v.length > 0 && v.length <= MAX_KEY_VALUE_CHARS && !v.includes('\u0000');
}

/** Every secondary key of an entry. */
export function keysOf(e: RecordingEntry): IndexKey[] {
  const t = startMsOf(e);
  const keys: IndexKey[] = [[TIME_KIND, t, e.id]];
  const values: Record<LookupField, string | undefined> = {
    numberHash: e.customerNumberHash,
    groupId: e.groupId,
    agentId: e.agentId,
    serviceNumber: e.serviceNumber,
    team: e.team,
    status: e.status,
  };
  for (const field of Object.keys(LOOKUP_KINDS) as LookupField[]) {
    const v = values[field];
    if (indexable(v)) keys.push([LOOKUP_KINDS[field], v, t, e.id]);
  }
  const xa = effectiveAudioExpiry(e);
  if (xa !== null) keys.push([AUDIO_EXPIRY_KIND, xa, e.id]);
  const xm = effectiveMetadataExpiry(e);
  if (xm !== null) keys.push([METADATA_EXPIRY_KIND, xm, e.id]);
  if (e.dataKey && indexable(e.dataKey.keyId)) keys.push([DATA_KEY_KIND, e.dataKey.keyId, e.id]);
  return keys;
}

export function keyString(k: IndexKey): string {
  return JSON.stringify(k);
}

/** Keys to delete and to add when an entry changes from `before` to `after`. */
export function keyDiff(before: RecordingEntry | undefined, after: RecordingEntry | undefined): { remove: IndexKey[]; add: IndexKey[] } {
  const oldKeys = before ? keysOf(before) : [];
  const newKeys = after ? keysOf(after) : [];
  const oldSet = new Set(oldKeys.map(keyString));
  const newSet = new Set(newKeys.map(keyString));
  return {
    remove: oldKeys.filter((k) => !newSet.has(keyString(k))),
    add: newKeys.filter((k) => !oldSet.has(keyString(k))),
  };
}

/** Cursors are opaque to callers: the (startMs, id) of the last item returned. */
export function encodeCursor(startMs: number, id: string): string {
  return Buffer.from(JSON.stringify([startMs, id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { startMs: number; id: string } | null {
  if (cursor.length > 1024) return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'string') return { startMs: v[0], id: v[1] };
  } catch {
    // fall through: a malformed cursor is reported as null
  }
  return null;
}
