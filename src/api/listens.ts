/**
 * Live listens in progress: how many run now (bounded, since each encodes on the daemon's
 * main thread), and their counts on the daemon's Prometheus registry. No label names a call,
 * a listener or a reason.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** Listens at once, over all callers; past it a listen is answered 503. */
export const MAX_LISTENS = 16;

export class ListenTracker {
  private running = 0;
  private readonly started: Counter;

  constructor(registry: Registry, private readonly max = MAX_LISTENS) {
    this.started = new Counter({ name: 'tallenne_listens_total', help: 'Live listens started (GET /api/v1/calls/{id}/listen allowed).', registers: [registry] });
    const self = this;
    new Gauge({ name: 'tallenne_listens_active', help: 'Live listens streaming now.', registers: [registry], collect() { this.set(self.running); } });
  }

  get active(): number {
    return this.running;
  }

  /** Takes a place for one listen; false when MAX_LISTENS run already. */
  begin(): boolean {
    if (this.running >= this.max) return false;
    this.running++;
    this.started.inc();
    return true;
  }

  end(): void {
    this.running = Math.max(0, this.running - 1);
  }
}
