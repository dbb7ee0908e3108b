import { describe, expect, it } from 'vitest';
import { identityFromClaims, type ClaimMapping } from '../../../src/api/auth/oidc-claims.js';

const MAPPING: ClaimMapping = { role_claim: 'roles', team_claim: 'teams', agent_claim: 'agent_id', name_claim: 'preferred_username' };

describe('OIDC claims to an identity', () => {
  it('takes roles, teams, agent id and name from the configured claims', () => {
    const r = identityFromClaims({ sub: 's-1', preferred_username: 'sanna', roles: ['supervisor', 'quality'], teams: ['helpdesk', 'billing'], agent_id: 'sanna' }, MAPPING, 1_000);
    expect(r).toEqual({
      ok: true,
      ignoredRoles: 0,
      identity: { name: 'sanna', roles: ['supervisor', 'quality'], teams: ['helpdesk', 'billing'], agentId: 'sanna', via: 'oidc', expiresAt: 1_000 },
    });
  });

  it('ignores values that are not tallenne roles, and duplicates', () => {
    const r = identityFromClaims({ sub: 's', roles: ['offline_access', 'agent', 'Agent', 'agent', 'root'] }, MAPPING);
    expect(r.ok && r.identity.roles).toEqual(['agent']);
    expect(r.ok && r.ignoredRoles).toBe(3);
  });

  it.each([
    ['no role claim', { sub: 's' }],
    ['only unknown roles', { sub: 's', roles: ['viewer', 'superuser'] }],
    ['an empty role list', { sub: 's', roles: [] }],
    ['a role claim of the wrong type', { sub: 's', roles: { agent: true } }],
  ])('refuses %s', (_what, claims) => {
    const r = identityFromClaims(claims, MAPPING);
    expect(r).toEqual({ ok: false, reason: 'no tallenne role in claim "roles"', name: 's' });
  });

  it('names the refused caller for the audit log', () => {
    expect(identityFromClaims({ sub: 's', preferred_username: 'ville', roles: ['visitor'] }, MAPPING)).toMatchObject({ ok: false, name: 'ville' });
  });

  it('refuses claims without a subject', () => {
    expect(identityFromClaims({ roles: ['agent'] }, MAPPING)).toEqual({ ok: false, reason: 'the token has no subject' });
    expect(identityFromClaims({ sub: '', roles: ['agent'] }, MAPPING).ok).toBe(false);
  });

  it('accepts a single string where a list is usual', () => {
    const r = identityFromClaims({ sub: 's', roles: 'dpo', teams: 'Customer Care' }, MAPPING);
    expect(r.ok && r.identity).toMatchObject({ roles: ['dpo'], teams: ['Customer Care'] });
  });

  it('falls back to sub for the name, and leaves out an agent id that is not a string', () => {
    const r = identityFromClaims({ sub: 'f81d4fae', roles: ['agent'], agent_id: 42 }, MAPPING);
    expect(r.ok && r.identity).toEqual({ name: 'f81d4fae', roles: ['agent'], teams: [], via: 'oidc' });
  });

  it('reads a dotted claim name as a path, unless a claim has that exact name', () => {
    const nested: ClaimMapping = { ...MAPPING, role_claim: 'realm_access.roles', team_claim: 'https://example.net/teams' };
    const r = identityFromClaims({ sub: 's', realm_access: { roles: ['security'] }, 'https://example.net/teams': ['soc'] }, nested);
    expect(r.ok && r.identity).toMatchObject({ roles: ['security'], teams: ['soc'] });
    const exact = identityFromClaims({ sub: 's', 'realm_access.roles': ['admin'], realm_access: { roles: ['security'] } }, nested);
    expect(exact.ok && exact.identity.roles).toEqual(['admin']);
    expect(identityFromClaims({ sub: 's', realm_access: ['security'] }, nested).ok).toBe(false);
  });

  it('does not read inherited properties as claims', () => {
    const r = identityFromClaims({ sub: 's', roles: ['agent'] }, { ...MAPPING, team_claim: 'constructor.name' });
    expect(r.ok && r.identity.teams).toEqual([]);
  });
});
