/**
 * What the SIP layer counts, read by the metrics endpoint through the SipCounters
 * interface. Methods outside the known set are counted as "other", so a peer cannot grow
 * the label set.
 */
import type { ConnectionRefusal } from './transport.js';

export interface SipCounters {
  readonly requests: Readonly<Record<string, number>>;
  readonly responses: Readonly<Record<string, number>>;
  /** Messages that could not be parsed or framed. */
  readonly malformed: number;
  /**
   * Messages and connections refused by the attack-surface limits, by reason: `source`
   * (not in allowed_sources), `invite_rate`, `connection_cap`, `tls_handshake`, `client_name`,
   * and `request_in_progress` (a re-INVITE or UPDATE while another of the call is being answered).
   */
  readonly refused: Readonly<Record<string, number>>;
  /** Stream connections the transport closed by a timeout: `idle`, `message_timeout`. */
  readonly connectionsClosed: Readonly<Record<string, number>>;
}

export type RefusalReason = 'source' | 'invite_rate' | 'request_in_progress' | Exclude<ConnectionRefusal, 'idle' | 'message_timeout'>;

const COUNTED_METHODS: ReadonlySet<string> = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'UPDATE', 'INFO', 'PRACK', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'REFER', 'PUBLISH',
]);

export class SipCounterSet implements SipCounters {
  readonly requests: Record<string, number> = {};
  readonly responses: Record<string, number> = {};
  malformed = 0;
  readonly refused: Record<string, number> = { source: 0, invite_rate: 0, request_in_progress: 0, connection_cap: 0, tls_handshake: 0, client_name: 0 };
  readonly connectionsClosed: Record<string, number> = { idle: 0, message_timeout: 0 };

  request(method: string): void {
    const key = COUNTED_METHODS.has(method) ? method : 'other';
    this.requests[key] = (this.requests[key] ?? 0) + 1;
  }

  response(status: number): void {
    const key = String(status);
    this.responses[key] = (this.responses[key] ?? 0) + 1;
  }

  badMessage(): void {
    this.malformed++;
  }

  refuse(reason: RefusalReason): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }

  /** What the transport reports: timeouts are closures, the rest refusals. */
  connectionRefused(reason: ConnectionRefusal): void {
    if (reason === 'idle' || reason === 'message_timeout') this.connectionsClosed[reason] = (this.connectionsClosed[reason] ?? 0) + 1;
    else this.refuse(reason);
  }
}
