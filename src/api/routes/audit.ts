/** GET /audit (the chain, paged, oldest first) and GET /audit/verify (the chain's verdict). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApiDeps } from '../deps.js';
import { authorize } from '../authorize.js';
import { errorSchema } from '../schemas.js';
import { auditAllowed } from './recordings.js';

const auditEntry = z.object({
  seq: z.number(),
  at: z.string(),
  node: z.string().optional().describe('The recorder that wrote the entry ([cluster] node_id)'),
  actor: z.string(),
  action: z.string(),
  recordingId: z.string().optional(),
  reason: z.string().optional(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  prevHash: z.string(),
  hash: z.string(),
});

const auditQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0).describe('Entries after this sequence number'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const verdict = z.union([
  z.object({ ok: z.literal(true), entries: z.number() }),
  z.object({ ok: z.literal(false), at: z.number(), problem: z.string() }),
]);

export const auditRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/audit',
    {
      schema: {
        summary: 'The audit chain, oldest first',
        tags: ['audit'],
        querystring: auditQuery,
        response: { 200: z.object({ items: z.array(auditEntry), nextAfter: z.number().optional() }), 403: errorSchema },
      },
    },
    async (request) => {
      const allowed = await authorize(deps, request, 'audit-read');
      const { after, limit } = request.query;
      const items = await deps.index.audit.list({ after, limit });
      await auditAllowed(deps, request, allowed, 'audit-read', undefined, { after, count: items.length });
      const last = items.at(-1);
      return { items, ...(items.length === limit && last ? { nextAfter: last.seq } : {}) };
    },
  );

  app.get(
    '/audit/verify',
    { schema: { summary: 'Verify the hash chain', tags: ['audit'], response: { 200: verdict, 403: errorSchema } } },
    async (request) => {
      const allowed = await authorize(deps, request, 'audit-verify');
      const v = await deps.index.audit.verify();
      await auditAllowed(deps, request, allowed, 'audit-verify', undefined, { ok: v.ok });
      return v;
    },
  );
};
