/**
 * The access roles and what a request may ask for. Names are stable: they are stored with
 * users, carried in OIDC claims, written to the audit log and shown by the API.
 */
export const ROLES = ['agent', 'supervisor', 'quality', 'maintainer', 'security', 'dpo', 'admin'] as const;
export type AccessRole = (typeof ROLES)[number];

export function isRole(s: string): s is AccessRole {
  return (ROLES as readonly string[]).includes(s);
}

/**
 * What a caller asks to do. Actions on one recording take its entry; the others
 * (`list`, `subject-search`, `audit-*`, `users`) take none. `calls` (see a call in progress)
 * and `listen` (hear it live) take the live call, scoped by its agent and team as a
 * recording is.
 */
export const ACTIONS = [
  'list',
  'show',
  'audio',
  'peaks',
  'export',
  'bulk-export',
  'hold',
  'release',
  'erase',
  'rectify',
  'subject-search',
  'audit-read',
  'audit-verify',
  'users',
  'calls',
  'listen',
] as const;
export type AccessAction = (typeof ACTIONS)[number];
