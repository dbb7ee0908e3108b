/** GET /me: who the caller is, their roles and scope, and what their roles may do. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { decide } from '../../access/policy.js';
import { ACTIONS, type AccessAction } from '../../access/roles.js';
import type { ApiDeps } from '../deps.js';
import { identityOf } from '../authorize.js';
import type { Identity } from '../auth/identity.js';
import { meSchema } from '../schemas.js';
import { SESSION_COOKIE } from '../auth/session.js';

export function meOf(identity: Identity): z.output<typeof meSchema> {
  const may: AccessAction[] = [];
  const reasonRequiredFor: AccessAction[] = [];
  for (const action of ACTIONS) {
    // Without a recording the policy answers whether the roles may do this at all.
    const d = decide(identity, action, undefined);
    if (d.allow) may.push(action);
    else if (d.code === 'reason-required') {
      may.push(action);
      reasonRequiredFor.push(action);
    }
  }
  return {
    name: identity.name,
    roles: [...identity.roles],
    agentId: identity.agentId ?? null,
    teams: [...identity.teams],
    via: identity.via,
    expiresAt: identity.expiresAt !== undefined ? new Date(identity.expiresAt).toISOString() : null,
    may,
    reasonRequiredFor,
  };
}

export const meRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/me',
    { schema: { summary: 'The caller: roles, scope and what the roles may do', tags: ['session'], response: { 200: meSchema } } },
    async (request) => {
      // Same-origin script only can read this answer, so the page may learn its CSRF token here.
      const cookie = request.headers.authorization === undefined ? request.cookies?.[SESSION_COOKIE] : undefined;
      const session = cookie ? deps.sessions.get(cookie) : undefined;
      return { ...meOf(identityOf(request)), ...(session ? { csrfToken: session.csrfToken } : {}) };
    },
  );
};
