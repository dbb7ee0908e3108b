/**
 * What the SIP layer counts, read by the metrics endpoint through the SipCounters
 * interface. Methods outside the known set are counted as "other", so a peer cannot grow
 * the label set.
 */

export interface SipCounters {
  readonly requests: Readonly<Record<string, number>>;
  readonly responses: Readonly<Record<string, number>>;
  /** Messages that could not be parsed or framed. */
  readonly malformed: number;
}

const COUNTED_METHODS: ReadonlySet<string> = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'UPDATE', 'INFO', 'PRACK', 'REGISTER', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'REFER', 'PUBLISH',
]);

export class SipCounterSet implements SipCounters {
  readonly requests: Record<string, number> = {};
  readonly responses: Record<string, number> = {};
  malformed = 0;

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
}
