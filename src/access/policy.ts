/**
 * The access policy: the one place that decides who may do what to which recording.
 * `decide(identity, action, entry, request)` is pure (no I/O, no clock) and returns the
 * decision with its reason, which goes to the audit log either way.
 *
 * | role       | sees and plays                 | export | hold/release | erase, rectify, subject search | audit, users      |
 * |------------|--------------------------------|--------|--------------|--------------------------------|-------------------|
 * | agent      | recordings where they are agent| no     | no           | no                             | no                |
 * | supervisor | their teams'                   | yes    | yes          | no                             | no                |
 * | quality    | all, listen only               | no     | no           | no                             | no                |
 * | maintainer | all, with a required reason    | yes    | no           | no                             | no                |
 * | security   | all, with a required reason    | yes    | yes          | no                             | audit read+verify |
 * | dpo        | by customer number; any one    | yes    | yes          | yes                            | audit read        |
 * |            | recording for erasure/rectify  |        |              |                                |                   |
 * | admin      | nothing                        | no     | no           | no                             | users and tokens  |
 *
 * Calls in progress (`calls`) are seen by the same scope as recordings. Listening in
 * (`listen`) is for the roles that see others' calls (supervisor for their teams, quality,
 * maintainer, security), and always with a reason; an agent sees their own live calls but
 * does not listen in, and a DPO does neither.
 *
 * A user may hold several roles: the request is allowed when any role allows it, and a
 * reason is required only when every role that allows it requires one.
 */
import type { AccessAction, AccessRole } from './roles.js';

/** What the policy needs to know about the caller (a subset of the API's Identity). */
export interface Subject {
  readonly roles: readonly AccessRole[];
  readonly agentId?: string;
  /** Teams in scope, already including the `[[agents]]` team and supervisor_of (see scopeOf). */
  readonly teams: readonly string[];
}

/** What the policy needs to know about a recording. */
export interface Resource {
  readonly agentId?: string;
  readonly team?: string;
}

export interface RequestFacts {
  /** The reason the caller gave, if any (blank counts as none). */
  readonly reason?: string;
}

export type Decision =
  | { readonly allow: true; readonly role: AccessRole; readonly reason: string }
  | { readonly allow: false; readonly code: 'forbidden' | 'reason-required'; readonly reason: string };

type RoleAnswer = 'allow' | 'allow-with-reason' | null;

const SEE: readonly AccessAction[] = ['list', 'show', 'audio', 'peaks'];
const EXPORT: readonly AccessAction[] = ['export', 'bulk-export'];
const HOLD: readonly AccessAction[] = ['hold', 'release'];
/** Seeing a call in progress follows seeing its recording. */
const LIVE: readonly AccessAction[] = ['calls'];

function own(s: Subject, r: Resource | undefined): boolean {
  if (r === undefined) return true; // asking whether the role may do this at all (e.g. list)
  return s.agentId !== undefined && r.agentId === s.agentId;
}

function team(s: Subject, r: Resource | undefined): boolean {
  if (r === undefined) return true;
  return r.team !== undefined && s.teams.includes(r.team);
}

/** One role's answer. `r` is undefined when the action is asked about without a recording. */
function roleAllows(role: AccessRole, action: AccessAction, s: Subject, r: Resource | undefined): RoleAnswer {
  if (action === 'listen') return listenAllowed(role, s, r) ? 'allow-with-reason' : null;
  const recordingAction = SEE.includes(action) || EXPORT.includes(action) || HOLD.includes(action);
  switch (role) {
    case 'agent':
      return (SEE.includes(action) || LIVE.includes(action)) && own(s, r) ? 'allow' : null;
    case 'supervisor':
      return (SEE.includes(action) || LIVE.includes(action) || EXPORT.includes(action) || HOLD.includes(action)) && team(s, r) ? 'allow' : null;
    case 'quality':
      return SEE.includes(action) || LIVE.includes(action) ? 'allow' : null;
    case 'maintainer':
      return SEE.includes(action) || LIVE.includes(action) || EXPORT.includes(action) ? 'allow-with-reason' : null;
    case 'security':
      if (recordingAction || LIVE.includes(action)) return 'allow-with-reason';
      return action === 'audit-read' || action === 'audit-verify' ? 'allow' : null;
    case 'dpo':
      // A DPO finds recordings by the customer's number (subject search), not by browsing;
      // any single recording may be shown, played, exported, held, erased or rectified.
      if (action === 'list') return null;
      if (recordingAction || action === 'subject-search' || action === 'erase' || action === 'rectify' || action === 'audit-read') return 'allow';
      return null;
    case 'admin':
      return action === 'users' ? 'allow' : null;
  }
}

/** Listening in to a live call: the roles that see others' calls, within their scope. */
function listenAllowed(role: AccessRole, s: Subject, r: Resource | undefined): boolean {
  switch (role) {
    case 'supervisor':
      return team(s, r);
    case 'quality':
    case 'maintainer':
    case 'security':
      return true;
    default:
      return false;
  }
}

export function decide(s: Subject, action: AccessAction, r: Resource | undefined, req: RequestFacts = {}): Decision {
  const hasReason = req.reason !== undefined && req.reason.trim().length > 0;
  let needsReason: AccessRole | undefined;
  for (const role of s.roles) {
    const a = roleAllows(role, action, s, r);
    if (a === 'allow') return { allow: true, role, reason: `role ${role} may ${action}${r ? ' this recording' : ''}` };
    if (a === 'allow-with-reason') {
      if (hasReason) return { allow: true, role, reason: `role ${role} may ${action} with a reason` };
      needsReason ??= role;
    }
  }
  if (needsReason !== undefined) return { allow: false, code: 'reason-required', reason: `role ${needsReason} needs a reason to ${action}` };
  if (s.roles.length === 0) return { allow: false, code: 'forbidden', reason: 'the user has no role' };
  return { allow: false, code: 'forbidden', reason: `roles ${s.roles.join(',')} may not ${action}${r ? ' this recording' : ''}` };
}

/** An `[[agents]]` entry as far as scope goes. */
export interface AgentScope {
  readonly id: string;
  readonly team?: string;
  readonly supervisor_of: readonly string[];
}

/**
 * The teams in a user's scope: their own teams, plus the `team` and `supervisor_of` of the
 * `[[agents]]` entry whose id is their agent id.
 */
export function scopeOf(user: { agentId?: string; teams: readonly string[] }, agents: readonly AgentScope[]): string[] {
  const teams = new Set(user.teams);
  const a = user.agentId !== undefined ? agents.find((x) => x.id === user.agentId) : undefined;
  if (a) {
    if (a.team !== undefined) teams.add(a.team);
    for (const t of a.supervisor_of) teams.add(t);
  }
  return [...teams];
}
