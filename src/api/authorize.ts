/**
 * The API's gate: asks the access policy about the caller, a recording and an action, and
 * turns a denial into an audited 403. The reason for access travels as the
 * `X-Tallenne-Reason` header or the `reason` query parameter (an <audio> element can only
 * use the query form).
 */
import type { FastifyRequest } from 'fastify';
import { decide, type Decision } from '../access/policy.js';
import type { AccessAction } from '../access/roles.js';
import type { RecordingEntry } from '../types.js';
import type { ApiDeps } from './deps.js';
import { ApiError } from './errors.js';
import type { Identity } from './auth/identity.js';

export const REASON_HEADER = 'x-tallenne-reason';
const MAX_REASON_CHARS = 1000;

/** The reason given: the header, else the query parameter, else one from the JSON body. */
export function reasonOf(request: FastifyRequest, bodyReason?: string): string | undefined {
  const h = request.headers[REASON_HEADER];
  const q = (request.query as Record<string, unknown> | undefined)?.reason;
  const v = typeof h === 'string' ? h : typeof q === 'string' ? q : bodyReason;
  if (v === undefined || v.trim() === '') return undefined;
  if (v.length > MAX_REASON_CHARS) throw new ApiError('API_BAD_REQUEST', `a reason is at most ${MAX_REASON_CHARS} characters`);
  return v.trim();
}

export function identityOf(request: FastifyRequest): Identity {
  if (!request.identity) throw new ApiError('API_UNAUTHENTICATED');
  return request.identity;
}

export type Allowed = Extract<Decision, { allow: true }> & { identity: Identity; given?: string };

/**
 * Allows or throws. A denial is audited here (with the roles and the policy's reason); an
 * allowed action is audited by the route once it has happened, with `allowed.role`.
 */
export async function authorize(
  deps: ApiDeps,
  request: FastifyRequest,
  action: AccessAction,
  entry?: Pick<RecordingEntry, 'id' | 'agentId' | 'team'>,
  bodyReason?: string,
): Promise<Allowed> {
  const identity = identityOf(request);
  const given = reasonOf(request, bodyReason);
  const d = decide(identity, action, entry, given !== undefined ? { reason: given } : {});
  if (!d.allow) {
    await deps.audit.record(request, identity, {
      action: 'denied',
      ...(entry ? { recordingId: entry.id } : {}),
      ...(given !== undefined ? { reason: given } : {}),
      details: { attempted: action, why: d.reason },
    });
    throw new ApiError(d.code === 'reason-required' ? 'API_REASON_REQUIRED' : 'API_FORBIDDEN', d.reason);
  }
  return { ...d, identity, ...(given !== undefined ? { given } : {}) };
}

/** The entry, or 404. Looked up before the policy so a denial can name the recording. */
export async function entryOr404(deps: ApiDeps, id: string): Promise<RecordingEntry> {
  const e = await deps.index.get(id);
  if (!e) throw new ApiError('API_NOT_FOUND', `no recording ${id}`);
  return e;
}
