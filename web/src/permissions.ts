/**
 * What the page offers the caller: the daemon's own access policy (src/access/policy.ts, a
 * pure function) asked with the caller's roles and scope from /me and, where there is one,
 * the recording, so a supervisor who is also a quality expert sees Hold only on their
 * teams' calls. It only hides what would be refused; the server decides again every time.
 */
import { decide } from '../../src/access/policy.js';
import type { AccessAction } from '../../src/access/roles.js';
import type { Me, Recording } from './types.js';

export type Offer = 'yes' | 'reason-required' | 'no';

export function allowed(me: Me, action: AccessAction, rec?: Recording): Offer {
  const subject = { roles: me.roles, teams: me.teams, ...(me.agentId ? { agentId: me.agentId } : {}) };
  const resource = rec ? { ...(rec.agentId ? { agentId: rec.agentId } : {}), ...(rec.team ? { team: rec.team } : {}) } : undefined;
  const d = decide(subject, action, resource);
  if (d.allow) return 'yes';
  return d.code === 'reason-required' ? 'reason-required' : 'no';
}

/** Allowed now or with a reason. */
export function may(me: Me, action: AccessAction, rec?: Recording): boolean {
  return allowed(me, action, rec) !== 'no';
}
