/**
 * RFC 4028 session timers, UAS side. The recorder never refreshes a session itself, so it
 * grants the interval the request asked for with the client as refresher, and requires the
 * extension only from a client that supports it (§9).
 */
import { firstHeader, tokenList, type SipHeader } from './message.js';

export interface SessionTimerGrant {
  readonly sessionExpires: { readonly seconds: number; readonly refresher: 'uac' };
  /** Whether the 2xx carries `Require: timer`. */
  readonly requireTimer: boolean;
}

/** The grant for a request's Session-Expires, or undefined when it has none (or no number). */
export function sessionTimerGrant(headers: readonly SipHeader[]): SessionTimerGrant | undefined {
  const value = firstHeader(headers, 'session-expires');
  const secs = value === undefined ? undefined : /^\s*(\d{1,9})/.exec(value)?.[1];
  if (secs === undefined) return undefined;
  const timer = tokenList(headers, 'supported').includes('timer') || tokenList(headers, 'require').includes('timer');
  return { sessionExpires: { seconds: Number(secs), refresher: 'uac' }, requireTimer: timer };
}
