/**
 * From an OpenID Connect provider's claims (an ID token at page login, an access token on
 * the API) to the caller's Identity. Pure: no I/O, no clock.
 *
 * Roles come from `role_claim` (values that are not tallenne roles are ignored; none left
 * refuses the caller), teams from `team_claim`, the agent id from `agent_claim`, the shown
 * name from `name_claim` or else `sub`. A claim may hold a string or a list of strings; a
 * dotted claim name ("realm_access.roles") reaches into nested objects when no claim carries
 * that exact name (names such as "https://example.net/roles" contain dots themselves).
 */
import { isRole, type AccessRole } from '../../access/roles.js';
import type { Identity } from './identity.js';

export interface ClaimMapping {
  readonly role_claim: string;
  readonly team_claim: string;
  readonly agent_claim: string;
  readonly name_claim: string;
}

export type ClaimsResult =
  | { readonly ok: true; readonly identity: Identity; readonly ignoredRoles: number }
  /** `name` is who the claims say the caller is, when they say it (for the audit log). */
  | { readonly ok: false; readonly reason: string; readonly name?: string };

export function identityFromClaims(claims: Readonly<Record<string, unknown>>, mapping: ClaimMapping, expiresAt?: number): ClaimsResult {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '') return { ok: false, reason: 'the token has no subject' };
  const shown = claim(claims, mapping.name_claim);
  const name = typeof shown === 'string' && shown !== '' ? shown : sub;
  const roleValues = strings(claim(claims, mapping.role_claim));
  const roles = [...new Set(roleValues.filter(isRole))] as AccessRole[];
  if (roles.length === 0) return { ok: false, reason: `no tallenne role in claim "${mapping.role_claim}"`, name };
  const teams = [...new Set(strings(claim(claims, mapping.team_claim)))];
  const agent = claim(claims, mapping.agent_claim);
  const identity: Identity = {
    name,
    roles,
    teams,
    via: 'oidc',
    ...(typeof agent === 'string' && agent !== '' ? { agentId: agent } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
  return { ok: true, identity, ignoredRoles: roleValues.length - roleValues.filter(isRole).length };
}

/** The claim of that exact name, else the value at its dotted path. */
function claim(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let at: unknown = claims;
  for (const part of name.split('.')) {
    if (at === null || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string' && x !== '');
  return [];
}
