/**
 * GET /recordings (search, cursor-paged, only what the caller may see) and
 * GET /recordings/{id} (one entry). A search by customer number is a subject search.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { decide } from '../../access/policy.js';
import type { AccessAction } from '../../access/roles.js';
import { NotANumberError, toListQuery, type RecordingFilters } from '../../index/filters.js';
import type { ListQuery } from '../../index/index.js';
import { recordingJson } from '../../cli/register.js';
import type { RecordingEntry } from '../../types.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize, entryOr404, type Allowed } from '../authorize.js';
import type { Identity } from '../auth/identity.js';
import { errorSchema, idParams, listQuery, listSchema, reasonHeaders, reasonQuery, recordingSchema } from '../schemas.js';

/** Index pages read at most per API page when the caller's scope filters many entries out. */
const MAX_ROUNDS = 20;

export const recordingRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/recordings',
    {
      schema: {
        summary: 'Search recordings (only those the caller may see)',
        tags: ['recordings'],
        querystring: listQuery,
        headers: reasonHeaders,
        response: { 200: listSchema, 400: errorSchema, 403: errorSchema },
      },
    },
    async (request) => {
      const { cursor, limit, reason: _reason, ...filters } = request.query;
      const action: AccessAction = filters.number !== undefined ? 'subject-search' : 'list';
      const allowed = await authorize(deps, request, action);
      const q = searchQuery(deps, filters);
      const page = await searchPage(deps, allowed.identity, action, q, limit, cursor);
      await deps.audit.record(request, allowed.identity, {
        action,
        role: allowed.role,
        ...(allowed.given !== undefined ? { reason: allowed.given } : {}),
        details: { filters: Object.keys(filters).sort().join(','), count: page.items.length },
      });
      return { items: page.items.map(recordingJson), ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) };
    },
  );

  app.get(
    '/recordings/:id',
    {
      schema: {
        summary: 'One recording (the `recordings show --json` shape)',
        tags: ['recordings'],
        params: idParams,
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: recordingSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const e = await entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'show', e);
      await auditAllowed(deps, request, allowed, 'show', e.id);
      return recordingJson(e);
    },
  );
};

export async function auditAllowed(
  deps: ApiDeps,
  request: Parameters<ApiDeps['audit']['record']>[0],
  allowed: Allowed,
  action: string,
  recordingId?: string,
  details?: Record<string, string | number | boolean>,
): Promise<void> {
  await deps.audit.record(request, allowed.identity, {
    action,
    role: allowed.role,
    ...(recordingId !== undefined ? { recordingId } : {}),
    ...(allowed.given !== undefined ? { reason: allowed.given } : {}),
    ...(details ? { details } : {}),
  });
}

export function searchQuery(deps: ApiDeps, filters: RecordingFilters): ListQuery {
  try {
    return toListQuery(filters, deps.config(), deps.hasher);
  } catch (e) {
    if (e instanceof NotANumberError) throw new ApiError('API_BAD_REQUEST', e.message);
    throw e;
  }
}

/**
 * Narrows a query to the caller's scope when no role of theirs sees beyond it, so an agent's
 * search reads their own index range instead of everyone's. Null: nothing can match.
 */
function narrowed(identity: Identity, action: AccessAction, q: ListQuery): ListQuery | null {
  const roles = identity.roles.filter((r) => decide({ ...identity, roles: [r] }, action, undefined).allow || decide({ ...identity, roles: [r] }, action, undefined, { reason: 'x' }).allow);
  if (roles.length === 1 && roles[0] === 'agent') {
    if (identity.agentId === undefined) return null;
    if (q.agentId !== undefined && q.agentId !== identity.agentId) return null;
    return { ...q, agentId: identity.agentId };
  }
  if (roles.length === 1 && roles[0] === 'supervisor') {
    if (identity.teams.length === 0) return null;
    if (q.team !== undefined) return identity.teams.includes(q.team) ? q : null;
    if (identity.teams.length === 1) return { ...q, team: identity.teams[0]! };
  }
  return q;
}

/**
 * One page of entries the caller may see. Entries outside their scope are skipped; the
 * index is read further (bounded) so a page is not left mostly empty by the filtering.
 */
export async function searchPage(
  deps: ApiDeps,
  identity: Identity,
  action: AccessAction,
  query: ListQuery,
  limit: number,
  cursor: string | undefined,
): Promise<{ items: RecordingEntry[]; nextCursor?: string }> {
  const q = narrowed(identity, action, query);
  if (q === null) return { items: [] };
  const items: RecordingEntry[] = [];
  let next = cursor;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const page = await deps.index.list(q, { limit: limit - items.length, ...(next !== undefined ? { cursor: next } : {}) });
    // The reason was checked for the search as a whole; each entry is checked for scope.
    for (const e of page.items) if (decide(identity, action, e, { reason: 'checked' }).allow) items.push(e);
    next = page.nextCursor;
    if (next === undefined || items.length >= limit) break;
  }
  return { items, ...(next !== undefined ? { nextCursor: next } : {}) };
}
