/**
 * The API's error table: one stable code per refusal, the HTTP status it is answered with,
 * and the message a client sees. Every error leaves as `{ "error": { "code", "message" } }`
 * (see the error handler in server.ts); a test checks each code is documented in README.md.
 */
import { TallenneError, type ErrorCode } from '../errors.js';

export const API_ERRORS = {
  API_BAD_REQUEST: { status: 400, message: 'the request is not valid' },
  API_MALFORMED_JSON: { status: 400, message: 'the request body is not valid JSON' },
  API_BAD_RANGE: { status: 416, message: 'the requested byte range cannot be served' },
  API_BODY_TOO_LARGE: { status: 413, message: 'the request body is over the limit' },
  API_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'the request body must be application/json' },
  API_UNAUTHENTICATED: { status: 401, message: 'log in or give a bearer token' },
  API_INVALID_TOKEN: { status: 401, message: 'the token is malformed, unknown, expired or revoked' },
  API_USER_DISABLED: { status: 401, message: 'the user is disabled or expired' },
  API_SESSION_EXPIRED: { status: 401, message: 'the session has ended; log in again' },
  API_CSRF: { status: 403, message: 'a state-changing request with a session cookie needs the X-CSRF-Token header' },
  API_FORBIDDEN: { status: 403, message: 'your roles do not allow this' },
  API_REASON_REQUIRED: { status: 403, message: 'give a reason (X-Tallenne-Reason header or reason parameter)' },
  API_NOT_FOUND: { status: 404, message: 'no such recording' },
  API_AUDIO_GONE: { status: 410, message: 'the audio of this recording is no longer stored' },
  API_ROUTE_NOT_FOUND: { status: 404, message: 'no such API route' },
  API_ERASURE_REFUSED: { status: 409, message: 'the retention policy or a legal hold does not allow erasure' },
  API_TOO_MANY_RECORDINGS: { status: 422, message: 'the search matches more recordings than [api] max_export' },
  API_RATE_LIMITED: { status: 429, message: 'too many requests; slow down' },
  API_EXPORT_FAILED: { status: 500, message: 'the audio could not be converted' },
  API_INTERNAL: { status: 500, message: 'internal error' },
  API_UNAVAILABLE: { status: 503, message: 'the service is not available now' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ApiErrorCode = keyof typeof API_ERRORS;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  constructor(code: ApiErrorCode, message?: string) {
    super(message ?? API_ERRORS[code].message);
    this.code = code;
    this.status = API_ERRORS[code].status;
    this.name = 'ApiError';
  }
}

/** The wire shape of every error answer. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}

/** The register's typed errors, as the API answers them. */
const FROM_CORE: Partial<Record<ErrorCode, ApiErrorCode>> = {
  TALLENNE_NOT_FOUND: 'API_NOT_FOUND',
  TALLENNE_ERASURE_REFUSED: 'API_ERASURE_REFUSED',
  TALLENNE_SHUTTING_DOWN: 'API_UNAVAILABLE',
};

export function fromCoreError(e: TallenneError): ApiError {
  const code = FROM_CORE[e.code];
  // Core messages name recording ids and policies, never personal data: safe to pass on.
  return code ? new ApiError(code, e.message) : new ApiError('API_INTERNAL');
}
