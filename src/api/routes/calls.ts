/**
 * GET /calls: the calls in progress that the caller may see (the same scope as their
 * recordings: an agent their own, a supervisor their teams', ...), with duration so far,
 * agent, team, service number and each leg's reception figures. Read from the call
 * manager's live sessions through LiveCalls; audited as `calls`.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { decide } from '../../access/policy.js';
import type { LiveCallView } from '../../calls/live.js';
import type { ApiDeps } from '../deps.js';
import { authorize } from '../authorize.js';
import { errorSchema, liveListSchema, reasonHeaders, reasonQuery } from '../schemas.js';
import { auditAllowed } from './recordings.js';

export function liveCallJson(c: LiveCallView) {
  return {
    id: c.id,
    startedAt: c.startedAt,
    durationMs: c.durationMs,
    state: c.state,
    agent: c.agentName ?? c.agentId ?? null,
    agentId: c.agentId ?? null,
    team: c.team ?? null,
    serviceNumber: c.serviceNumber ?? null,
    customerNumber: c.customerNumber ?? null,
    direction: c.direction,
    legs: c.legs,
  };
}

export const callRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/calls',
    {
      schema: {
        summary: 'The calls in progress (only those the caller may see)',
        tags: ['calls'],
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: liveListSchema, 403: errorSchema },
      },
    },
    async (request) => {
      const allowed = await authorize(deps, request, 'calls');
      const items = (deps.calls?.list() ?? []).filter((c) => decide(allowed.identity, 'calls', c, { reason: 'checked' }).allow);
      await auditAllowed(deps, request, allowed, 'calls', undefined, { count: items.length });
      return { items: items.map(liveCallJson) };
    },
  );
};
