/**
 * What people do to one recording, through src/retention/actions.ts (each audited there, in
 * the same transaction as the change, with the caller's role and address added):
 *   POST   /recordings/{id}/hold    `{ reason, until? }`  legal hold
 *   DELETE /recordings/{id}/hold    reason optional       release
 *   DELETE /recordings/{id}         reason required       erasure, where the policy allows it
 *   PATCH  /recordings/{id}         `{ reason, fields }`  rectification
 * A reason in the body counts as the X-Tallenne-Reason header.
 */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { erase, hold, rectify, release, RECTIFIABLE_FIELDS, type RectifiableField } from '../../retention/actions.js';
import { recordingJson } from '../../cli/register.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize, entryOr404, type Allowed } from '../authorize.js';
import { actorName } from '../audit.js';
import { errorSchema, idParams, okSchema, reasonHeaders, reasonQuery, recordingSchema } from '../schemas.js';

const reasonText = z.string().trim().min(1).max(1000);

const holdBody = z.strictObject({
  reason: reasonText.describe('Why (a complaint, an authority request)'),
  until: z.string().max(40).optional().describe('Hold end date; absent: until released'),
});

const rectifyBody = z.strictObject({
  reason: reasonText.optional().describe('Default: "rectification request"'),
  fields: z
    .strictObject(Object.fromEntries(RECTIFIABLE_FIELDS.map((f) => [f, z.string().max(256).optional()])) as Record<RectifiableField, z.ZodOptional<z.ZodString>>)
    .describe('Fields to correct; an empty string removes the field. customerNumber is given in clear and stored masked and hashed'),
});

function context(request: FastifyRequest, allowed: Allowed): Record<string, string> {
  return { role: allowed.role, via: allowed.identity.via, client: request.ip };
}

export const actionRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.post(
    '/recordings/:id/hold',
    {
      schema: {
        summary: 'Legal hold: suspends expiry until released',
        tags: ['register'],
        params: idParams,
        body: holdBody,
        response: { 200: recordingSchema, 400: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const e = await entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'hold', e, request.body.reason);
      const updated = await hold(deps.index, e.id, {
        actor: actorName(allowed.identity),
        reason: request.body.reason,
        ...(request.body.until !== undefined ? { until: request.body.until } : {}),
        context: context(request, allowed),
      }, deps.now);
      return recordingJson(updated);
    },
  );

  app.delete(
    '/recordings/:id/hold',
    {
      schema: {
        summary: 'Release a legal hold',
        tags: ['register'],
        params: idParams,
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: recordingSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const e = await entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'release', e);
      const updated = await release(deps.index, e.id, {
        actor: actorName(allowed.identity),
        ...(allowed.given !== undefined ? { reason: allowed.given } : {}),
        context: context(request, allowed),
      });
      return recordingJson(updated);
    },
  );

  app.delete(
    '/recordings/:id',
    {
      schema: {
        summary: 'Erase a recording (file and entry), where its retention policy allows it',
        tags: ['register'],
        params: idParams,
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: okSchema, 400: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    },
    async (request) => {
      const e = await entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'erase', e);
      if (allowed.given === undefined) throw new ApiError('API_REASON_REQUIRED', 'erasure needs a reason');
      const c = deps.config();
      await erase(deps.index, deps.store, e.id, { actor: actorName(allowed.identity), reason: allowed.given, context: context(request, allowed) }, c.retention, {
        defaultCountry: c.privacy.default_country,
        now: deps.now,
      });
      deps.peaks.forget(e.id);
      return { ok: true as const };
    },
  );

  app.patch(
    '/recordings/:id',
    {
      schema: {
        summary: 'Rectify the fields `tallenne recordings rectify` can rectify',
        tags: ['register'],
        params: idParams,
        body: rectifyBody,
        response: { 200: recordingSchema, 400: errorSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const e = await entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'rectify', e, request.body.reason);
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(request.body.fields)) if (v !== undefined) fields[k] = v;
      const c = deps.config();
      const updated = await rectify(deps.index, e.id, fields, { actor: actorName(allowed.identity), reason: allowed.given ?? 'rectification request', context: context(request, allowed) }, {
        retention: c.retention,
        privacy: c.privacy,
        agents: c.agents,
        hasher: deps.hasher,
      });
      return recordingJson(updated);
    },
  );
};
