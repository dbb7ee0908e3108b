/**
 * What people do to one recording: legal hold and release (a complaint, an authority
 * request), erasure and rectification (a data subject's request). Each is audited in the
 * same transaction as the change; a refusal is audited too. Audit entries carry field names
 * and policy names, never the values of personal data.
 */
import type { Config } from '../config/schema.js';
import { TallenneError } from '../errors.js';
import type { RecordingIndex } from '../index/index.js';
import { protectNumber, type NumberHasher } from '../privacy/numbers.js';
import type { AudioStore } from '../storage/audio-store.js';
import type { Direction, RecordingEntry } from '../types.js';
import { destroyRecording, type DestroyHooks } from './destroy.js';
import { erasureRule, withRetention, type RetentionConfig } from './policy.js';

export interface Who {
  actor: string;
  reason: string;
  /** Extra audit details from the caller (the API adds the role and client address). */
  context?: Readonly<Record<string, string | number | boolean>>;
}

/** A request that cannot be carried out as asked (bad field, missing reason): a usage error. */
export class ActionInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionInputError';
  }
}

function requireWho(who: { actor: string; reason?: string }, needReason: boolean): void {
  if (who.actor.trim().length === 0) throw new ActionInputError('an actor is required');
  if (needReason && (who.reason === undefined || who.reason.trim().length === 0)) throw new ActionInputError('a reason is required');
}

function detailsOf(d: Record<string, string | number | boolean>): { details?: Record<string, string | number | boolean> } {
  return Object.keys(d).length > 0 ? { details: d } : {};
}

function parseWhen(v: string | number, what: string): string {
  const t = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new ActionInputError(`${what} "${v}" is not a date (use e.g. 2026-06-30 or 2026-06-30T12:00:00Z)`);
  return new Date(t).toISOString();
}

async function getOrThrow(index: RecordingIndex, id: string): Promise<RecordingEntry> {
  const e = await index.get(id);
  if (!e) throw new TallenneError('TALLENNE_NOT_FOUND', `no recording ${id}`);
  return e;
}

/** Suspends expiry of the recording until released (or until `until`, when given). */
export async function hold(
  index: RecordingIndex,
  id: string,
  req: { actor: string; reason: string; until?: string | number; context?: Who['context'] },
  now: () => number = Date.now,
): Promise<RecordingEntry> {
  requireWho(req, true);
  const until = req.until !== undefined ? parseWhen(req.until, 'the hold end date') : undefined;
  await getOrThrow(index, id);
  if (await index.getIntent(id)) throw new TallenneError('TALLENNE_NOT_FOUND', `recording ${id} is being destroyed`);
  const h = { reason: req.reason, by: req.actor, at: new Date(now()).toISOString(), ...(until !== undefined ? { until } : {}) };
  return index.update(id, (e) => ({ ...e, hold: h }), {
    audit: { actor: req.actor, action: 'hold', recordingId: id, reason: req.reason, ...detailsOf({ ...req.context, ...(until !== undefined ? { until } : {}) }) },
  });
}

/** Ends a hold; expiry resumes from the recording's own dates (a past date expires at the next purge). */
export async function release(index: RecordingIndex, id: string, req: { actor: string; reason?: string; context?: Who['context'] }): Promise<RecordingEntry> {
  requireWho(req, false);
  const before = await getOrThrow(index, id);
  return index.update(id, (e) => ({ ...e, hold: undefined }) as RecordingEntry, {
    audit: { actor: req.actor, action: 'release', recordingId: id, ...(req.reason ? { reason: req.reason } : {}), details: { ...req.context, wasHeld: before.hold !== undefined } },
  });
}

/**
 * Deletes the recording now (file and entry), crash-safely. Refused with
 * TALLENNE_ERASURE_REFUSED where the recording's policy says erasure does not apply, and
 * while the recording is under a legal hold.
 */
export async function erase(
  index: RecordingIndex,
  store: AudioStore,
  id: string,
  req: Who,
  retention: RetentionConfig,
  opts: { now?: () => number; hooks?: DestroyHooks; defaultCountry?: string } = {},
): Promise<{ fileDeleted: boolean }> {
  requireWho(req, true);
  const entry = await getOrThrow(index, id);
  const rule = erasureRule(entry, retention, opts.defaultCountry !== undefined ? { defaultCountry: opts.defaultCountry } : {});
  let refusal: string | undefined;
  if (rule.erasure === 'refused') refusal = `policy "${rule.policy}" refuses erasure: ${rule.reason}`;
  else if (entry.hold) refusal = `the recording is under a legal hold (${entry.hold.reason})`;
  if (refusal !== undefined) {
    await index.audit.append({ actor: req.actor, action: 'erase-refused', recordingId: id, reason: req.reason, details: { ...req.context, policy: rule.policy } });
    throw new TallenneError('TALLENNE_ERASURE_REFUSED', `recording ${id}: ${refusal}`);
  }
  const r = await destroyRecording(
    index,
    store,
    entry,
    { kind: 'recording', actor: req.actor, action: 'erase', reason: req.reason, details: { ...req.context, policy: rule.policy }, condition: { notHeld: true } },
    opts.now ?? Date.now,
    opts.hooks,
  );
  if (!r.done) throw new TallenneError('TALLENNE_ERASURE_REFUSED', `recording ${id} was placed on hold or removed meanwhile`);
  return { fileDeleted: r.fileDeleted };
}

/** Fields a rectification may set; an empty value removes the field. */
export const RECTIFIABLE_FIELDS = ['agentId', 'agentName', 'team', 'serviceNumber', 'trunk', 'direction', 'customerNumber'] as const;
export type RectifiableField = (typeof RECTIFIABLE_FIELDS)[number];
const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound', 'internal', 'unknown'];

export interface RectifyContext {
  retention: RetentionConfig;
  privacy: Config['privacy'];
  agents?: Config['agents'];
  /** Needed to rectify `customerNumber` (given in clear, stored masked and hashed). */
  hasher?: NumberHasher;
}

/**
 * Corrects metadata. `agentId` of a configured agent also sets the name and team from the
 * directory unless they are given. The retention is decided again (the service number or
 * team may put the recording under another policy).
 */
export async function rectify(
  index: RecordingIndex,
  id: string,
  fields: Readonly<Record<string, string>>,
  req: Who,
  ctx: RectifyContext,
): Promise<RecordingEntry> {
  requireWho(req, true);
  const names = Object.keys(fields);
  if (names.length === 0) throw new ActionInputError('nothing to rectify: give at least one field=value');
  const patch: Record<string, unknown> = {};
  for (const name of names) {
    if (!(RECTIFIABLE_FIELDS as readonly string[]).includes(name)) {
      throw new ActionInputError(`"${name}" cannot be rectified (one of: ${RECTIFIABLE_FIELDS.join(', ')})`);
    }
    const value = fields[name]!.trim();
    const field = name as RectifiableField;
    if (field === 'customerNumber') {
      if (value === '') {
        patch.customerNumber = undefined;
        patch.customerNumberHash = undefined;
        continue;
      }
      if (!ctx.hasher) throw new ActionInputError('rectifying the customer number needs the number hash key');
      const p = protectNumber(value, ctx.privacy, ctx.hasher);
      patch.customerNumber = p.masked;
      patch.customerNumberHash = p.hash;
      continue;
    }
    if (field === 'direction' && value !== '' && !(DIRECTIONS as readonly string[]).includes(value)) {
      throw new ActionInputError(`direction must be one of ${DIRECTIONS.join(', ')}`);
    }
    patch[field] = value === '' ? undefined : value;
  }
  if (typeof patch.agentId === 'string' && ctx.agents) {
    const agent = ctx.agents.find((a) => a.id === patch.agentId);
    if (agent) {
      if (!('agentName' in patch)) patch.agentName = agent.name;
      if (!('team' in patch) && agent.team !== undefined) patch.team = agent.team;
    }
  }
  const current = await getOrThrow(index, id);
  const policyOpts = { defaultCountry: ctx.privacy.default_country };
  const policy = withRetention({ ...current, ...patch } as RecordingEntry, ctx.retention, policyOpts).retention!.policy;
  const updated = await index.update(id, (e) => withRetention({ ...e, ...patch } as RecordingEntry, ctx.retention, policyOpts), {
    audit: { actor: req.actor, action: 'rectify', recordingId: id, reason: req.reason, details: { ...req.context, fields: Object.keys(patch).sort().join(','), policy } },
  });
  return updated;
}
