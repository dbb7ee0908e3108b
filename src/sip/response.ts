/**
 * The responses the user agent sends, described field by field and encoded in one place
 * (RFC 3261 §8.2.6, §20). A body and its Content-Type are one field, so a response without
 * a body can never carry a Content-Type; every other header is present only when its field
 * is set.
 */
import { buildResponse, type SipHeader, type SipRequest } from './message.js';

export interface ResponseDescription {
  readonly status: number;
  /** Defaults to the standard phrase for the status. */
  readonly reason?: string;
  /** Our tag, added to To when the request had none (never on a 100). */
  readonly toTag?: string;
  /** Server header: our product name. */
  readonly server: string;
  /** The whole Contact value, e.g. `<sip:tallenne@192.0.2.1:5060>;+sip.srs`. */
  readonly contact?: string;
  readonly allow?: readonly string[];
  readonly accept?: readonly string[];
  readonly supported?: readonly string[];
  readonly require?: readonly string[];
  /** Option tags of the request we do not support (with 420). */
  readonly unsupported?: readonly string[];
  /** RFC 4028 session interval granted. */
  readonly sessionExpires?: { readonly seconds: number; readonly refresher: 'uac' | 'uas' };
  /** Warning text (§20.43), sent as code 399 from tallenne. */
  readonly warning?: string;
  readonly retryAfterSeconds?: number;
  readonly body?: { readonly contentType: string; readonly content: string | Buffer };
}

/** Encodes `d` as the response to `req`. */
export function encodeResponse(req: SipRequest, d: ResponseDescription): Buffer {
  const headers: SipHeader[] = [{ name: 'server', value: d.server }];
  const list = (name: string, values: readonly string[] | undefined) => {
    if (values && values.length > 0) headers.push({ name, value: values.join(', ') });
  };
  if (d.contact !== undefined) headers.push({ name: 'contact', value: d.contact });
  list('allow', d.allow);
  list('accept', d.accept);
  list('supported', d.supported);
  list('require', d.require);
  list('unsupported', d.unsupported);
  if (d.sessionExpires) headers.push({ name: 'session-expires', value: `${d.sessionExpires.seconds};refresher=${d.sessionExpires.refresher}` });
  if (d.warning !== undefined) headers.push({ name: 'warning', value: warningValue(d.warning) });
  if (d.retryAfterSeconds !== undefined) headers.push({ name: 'retry-after', value: String(d.retryAfterSeconds) });
  if (d.body) headers.push({ name: 'content-type', value: d.body.contentType });
  return buildResponse(req, d.status, d.reason ?? reasonPhrase(d.status), {
    ...(d.toTag !== undefined ? { toTag: d.toTag } : {}),
    headers,
    ...(d.body ? { body: d.body.content } : {}),
  });
}

/** `399 tallenne "text"`, with quotes, backslashes and line breaks blanked, at most 200 characters. */
function warningValue(text: string): string {
  return `399 tallenne "${text.replace(/["\\\r\n]/g, ' ').slice(0, 200)}"`;
}

const PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying', 200: 'OK',
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
  415: 'Unsupported Media Type', 420: 'Bad Extension', 480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist', 482: 'Loop Detected', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here',
  500: 'Server Internal Error', 503: 'Service Unavailable', 513: 'Message Too Large',
};

export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? (status < 300 ? 'OK' : 'Error');
}
