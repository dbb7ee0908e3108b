/**
 * GET /access-review: every user (local, and single-sign-on users seen), their roles and
 * scope, when each was last used, and which have not been used for `[access] review_after`
 * (candidates for removal), with their API tokens (ids only).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { scopeOf } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import { authorize } from '../authorize.js';
import { errorSchema, reviewSchema } from '../schemas.js';
import { auditAllowed } from './recordings.js';

export const accessReviewRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/access-review',
    { schema: { summary: 'Users, roles, scope and last use, for the regular access review', tags: ['users'], response: { 200: reviewSchema, 403: errorSchema } } },
    async (request) => {
      const allowed = await authorize(deps, request, 'users');
      const c = deps.config();
      const window = c.access.review_after.ms;
      const now = deps.now();
      const users = [];
      for (const u of await deps.index.users.listUsers()) {
        const last = u.lastUsedAt ?? u.createdAt;
        const tokens = await deps.index.users.tokensOf(u.name);
        users.push({
          name: u.name,
          source: u.source,
          roles: [...u.roles],
          agentId: u.agentId ?? null,
          teams: scopeOf(u, c.agents),
          createdAt: u.createdAt,
          expiresAt: u.expiresAt ?? null,
          disabled: u.disabledAt !== undefined,
          lastUsedAt: u.lastUsedAt ?? null,
          unused: now - Date.parse(last) >= window,
          tokens: tokens.map((t) => ({
            id: t.id,
            createdAt: t.createdAt,
            expiresAt: t.expiresAt ?? null,
            revoked: t.revokedAt !== undefined,
            lastUsedAt: t.lastUsedAt ?? null,
          })),
        });
      }
      await auditAllowed(deps, request, allowed, 'access-review', undefined, { users: users.length });
      return { reviewAfterDays: Math.round(window / 86_400_000), users };
    },
  );
};
