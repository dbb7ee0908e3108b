/**
 * The API's wire shapes as zod schemas: they validate requests, shape responses and are the
 * source of the OpenAPI document at /api/v1/openapi.json. A recording is the
 * `tallenne recordings show --json` shape (src/cli/register.ts recordingJson).
 */
import { z } from 'zod';
import { ACTIONS, ROLES } from '../access/roles.js';
import { API_ERRORS } from './errors.js';

export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(API_ERRORS) as [keyof typeof API_ERRORS, ...(keyof typeof API_ERRORS)[]]),
      message: z.string(),
    }),
  })
  .describe('Every error: a stable code (see the README error table) and a message');

/** Recording ids as the index gives them: ULIDs and SIPREC-derived ids; nothing path-like. */
export const recordingId = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'a recording id is letters, digits, - and _')
  .describe('Recording id');

export const idParams = z.strictObject({ id: recordingId });

const role = z.enum(['customer', 'agent', 'other']);

/** What a leg shows of its reception, stored with a recording and live alike. */
const legReception = {
  index: z.number(),
  label: z.string().optional(),
  role,
  codec: z.string(),
  packets: z.number(),
  lost: z.number().describe('RFC 3550 cumulative loss'),
};

export const recordingSchema = z
  .object({
    id: z.string(),
    startedAt: z.string(),
    endedAt: z.string(),
    durationMs: z.number(),
    status: z.string(),
    customerNumber: z.string().nullable().describe('Masked'),
    serviceNumber: z.string().nullable(),
    agent: z.string().nullable().describe('Agent name, else agent id'),
    agentId: z.string().nullable(),
    team: z.string().nullable(),
    direction: z.string(),
    file: z.string().nullable().describe('Audio key under storage.dir; null once purged'),
    fileBytes: z.number(),
    channels: z.number(),
    sampleRate: z.number(),
    endReason: z.string(),
    siprec: z.boolean(),
    siprecSessionId: z.string().nullable(),
    node: z.string().nullish(),
    groupId: z.string().nullable(),
    participants: z.array(
      z.object({
        id: z.string(),
        role,
        number: z.string().optional(),
        agentId: z.string().optional(),
        agentName: z.string().optional(),
        sends: z.array(z.string()).readonly(),
        joinedMs: z.number().optional().describe('Milliseconds since answer'),
        leftMs: z.number().optional(),
      }),
    ).readonly(),
    legs: z.array(
      z.object({
        ...legReception,
        ssrcs: z.number(),
        jitterMs: z.number(),
        mos: z.number().optional().describe('Estimated MOS, 1–4.5 (ITU-T G.107 E-model from codec, loss, jitter and a delay estimate)'),
      }),
    ).readonly(),
    pauses: z.array(z.object({ startMs: z.number(), endMs: z.number().optional() })).readonly(),
    dtmf: z.array(z.object({ atMs: z.number(), durationMs: z.number(), digit: z.string().describe("The key, or '*masked*'"), leg: z.number() })).readonly(),
    retention: z.object({ policy: z.string(), audioExpiresAt: z.string(), metadataExpiresAt: z.string() }).nullish(),
    hold: z.object({ reason: z.string(), until: z.string().optional(), by: z.string(), at: z.string() }).nullish(),
    audioPurgedAt: z.string().nullable(),
  })
  .describe('A recording (the `recordings show --json` shape)');

export const liveCallSchema = z
  .object({
    id: z.string().describe('The id its recording will have'),
    startedAt: z.string(),
    durationMs: z.number().describe('So far'),
    state: z.string().describe('answered, recording or paused'),
    agent: z.string().nullable().describe('Agent name, else agent id'),
    agentId: z.string().nullable(),
    team: z.string().nullable(),
    serviceNumber: z.string().nullable(),
    customerNumber: z.string().nullable().describe('Masked'),
    direction: z.string(),
    legs: z.array(
      z.object({
        ...legReception,
        jitterMs: z.number().describe('RFC 3550 interarrival jitter now'),
        mos: z.number().optional().describe('Estimated MOS so far (ITU-T G.107 E-model)'),
      }),
    ).readonly(),
  })
  .describe('A call in progress');

export const liveListSchema = z.object({ items: z.array(liveCallSchema) });

export const listSchema = z.object({
  items: z.array(recordingSchema),
  nextCursor: z.string().optional().describe('Give as `cursor` for the next page'),
});

export const peaksSchema = z
  .object({
    intervalMs: z.literal(20),
    durationMs: z.number(),
    channels: z.array(
      z.object({
        role: z.enum(['customer', 'agent']),
        min: z.array(z.number().min(-1).max(1)).describe('Per interval, -1..1 (two decimals)'),
        max: z.array(z.number().min(-1).max(1)),
      }),
    ),
  })
  .describe('Waveform peaks: min and max per 20 ms per channel, values -1..1; channel 0 customer, 1 agent');

export const meSchema = z.object({
  name: z.string(),
  roles: z.array(z.enum(ROLES)),
  agentId: z.string().nullable(),
  teams: z.array(z.string()).describe('Teams in scope (own, [[agents]] team and supervisor_of)'),
  via: z.enum(['token', 'session', 'oidc']),
  expiresAt: z.string().nullable(),
  may: z.array(z.enum(ACTIONS)).describe('Actions some recording may allow (the page shows buttons by it; the server still decides)'),
  reasonRequiredFor: z.array(z.enum(ACTIONS)).describe('Actions that need a reason (X-Tallenne-Reason or ?reason=)'),
  csrfToken: z.string().optional().describe('For a cookie session: the X-CSRF-Token its state-changing requests carry (a page opened after SSO learns it here)'),
});

export const reasonHeaders = z.object({
  'x-tallenne-reason': z.string().max(1000).optional().describe('Reason for access (required for maintainer and security)'),
});

export const sessionBody = z.strictObject({ token: z.string().min(1).max(4096) });
export const sessionReply = z.object({ csrfToken: z.string(), me: meSchema });

/** GET /access-review. */
export const reviewSchema = z.object({
  reviewAfterDays: z.number(),
  users: z.array(
    z.object({
      name: z.string(),
      source: z.enum(['local', 'oidc']),
      roles: z.array(z.enum(ROLES)),
      agentId: z.string().nullable(),
      teams: z.array(z.string()).describe('Teams in scope'),
      createdAt: z.string(),
      expiresAt: z.string().nullable(),
      disabled: z.boolean(),
      lastUsedAt: z.string().nullable(),
      unused: z.boolean().describe('Not used for [access] review_after (or never, and older than that)'),
      tokens: z.array(z.object({ id: z.string(), createdAt: z.string(), expiresAt: z.string().nullable(), revoked: z.boolean(), lastUsedAt: z.string().nullable() })),
    }),
  ),
});

export const okSchema = z.object({ ok: z.literal(true) });

/** "2026-03-01", "2026-03-01T08:00:00Z" or epoch milliseconds. */
export const timeParam = z
  .string()
  .max(40)
  .transform((v, ctx): number => {
    const t = /^\d{10,}$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(t)) {
      ctx.addIssue({ code: 'custom', message: 'not a date (e.g. 2026-03-01 or 2026-03-01T08:00:00Z)' });
      return z.NEVER;
    }
    return t;
  });

const text = (what: string) => z.string().min(1).max(200).describe(what);
export const reasonParam = z.string().max(1000).optional().describe('Reason for access (the query form of X-Tallenne-Reason)');

/** The CLI's search filters, plus `number` (subject search, DPO only). */
export const filterFields = {
  from: timeParam.optional().describe('Start time, inclusive (date, ISO time or epoch ms)'),
  to: timeParam.optional().describe('Start time, exclusive'),
  agent: text('Agent id or name').optional(),
  team: text('Team').optional(),
  service: text('Service number, any spelling').optional(),
  group: text('SIPREC recording-session group').optional(),
  status: z.enum(['complete', 'truncated']).optional(),
  number: z.string().min(1).max(64).optional().describe("A customer's number in any form (subject search: DPO only)"),
};

export const listQuery = z.strictObject({
  ...filterFields,
  cursor: z.string().min(1).max(1024).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  reason: reasonParam,
});

export const reasonQuery = z.strictObject({ reason: reasonParam });
