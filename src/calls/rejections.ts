/**
 * How the call manager refuses a request: each refusal is an error code of src/errors.ts
 * with its SIP status, the `reason` label it is counted under in the metrics, and how long
 * the client should wait before trying again. A ProtocolError brings its own status.
 */
import type { ErrorCode } from '../errors.js';

export interface RejectionRule {
  readonly status: number;
  /** Label of tallenne_calls_rejected_total / tallenne_call_updates_rejected_total. */
  readonly reason: string;
  readonly retryAfterSeconds?: number;
}

export const REJECTIONS = {
  TALLENNE_SHUTTING_DOWN: { status: 503, reason: 'shutting_down', retryAfterSeconds: 30 },
  TALLENNE_CAPACITY: { status: 503, reason: 'capacity', retryAfterSeconds: 5 },
  TALLENNE_DISK_LOW: { status: 503, reason: 'disk_low', retryAfterSeconds: 60 },
  TALLENNE_NO_PORTS: { status: 503, reason: 'no_ports', retryAfterSeconds: 5 },
  TALLENNE_SPOOL_UNWRITABLE: { status: 503, reason: 'spool_unwritable', retryAfterSeconds: 60 },
  TALLENNE_NO_OFFER: { status: 488, reason: 'no_offer' },
  TALLENNE_NO_USABLE_CODEC: { status: 488, reason: 'no_codec' },
  TALLENNE_SRTP_REQUIRED: { status: 488, reason: 'srtp_required' },
  TALLENNE_SRTP_UNSUPPORTED: { status: 488, reason: 'srtp_unsupported' },
  TALLENNE_SIP_MALFORMED: { status: 400, reason: 'malformed' },
  TALLENNE_SDP_MALFORMED: { status: 400, reason: 'malformed' },
  TALLENNE_METADATA_MALFORMED: { status: 400, reason: 'malformed' },
  TALLENNE_UNSUPPORTED_MEDIA_TYPE: { status: 415, reason: 'unsupported_media_type' },
  TALLENNE_DIALOG_NOT_FOUND: { status: 481, reason: 'dialog_not_found' },
  TALLENNE_MERGED_REQUEST: { status: 482, reason: 'merged_request' },
} as const satisfies Partial<Record<ErrorCode, RejectionRule>>;

export type RejectionCode = keyof typeof REJECTIONS;

/** A refusal as the manager reports it to observers (metrics, logs). */
export interface Rejection {
  readonly method: string;
  readonly status: number;
  readonly code: RejectionCode;
  readonly reason: string;
}

export function isRejectionCode(code: string): code is RejectionCode {
  return Object.hasOwn(REJECTIONS, code);
}
