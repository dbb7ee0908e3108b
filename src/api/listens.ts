/**
 * Live listens: what the listen route starts them through, how many run now (bounded: each
 * takes an encoder thread's time), and their counts on the daemon's Prometheus registry. No
 * label names a call, a listener or a reason given by a listener.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ListenHandle, ListenSink } from '../encoder/pool.js';
import { LISTEN_END_REASONS, type ListenEndReason } from '../encoder/listen-stream.js';

/** Listens at once, over all callers; past it a listen is answered 503. */
export const MAX_LISTENS = 16;

/**
 * Starts a live listen of a call from `fromMs` on (the daemon: the call's own job from the
 * Finaliser, encoded on the encoder pool). Null when the call is not being recorded.
 */
export interface LiveListens {
  open(callId: string, fromMs: number, sink: ListenSink): Promise<ListenHandle | null>;
}

export class ListenTracker {
  private running = 0;
  private readonly started: Counter;
  private readonly ended: Counter<'reason'>;

  constructor(registry: Registry, private readonly max = MAX_LISTENS) {
    this.started = new Counter({ name: 'tallenne_listens_total', help: 'Live listens started (GET /api/v1/calls/{id}/listen allowed).', registers: [registry] });
    this.ended = new Counter({
      name: 'tallenne_listens_ended_total',
      help: 'Live listens ended, by reason: call_ended, listener_gone, too_slow (the listener fell a window behind and was cut off), failed, shutdown.',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const reason of LISTEN_END_REASONS) this.ended.inc({ reason }, 0);
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

  /** Gives a place back, counting why the listen ended. */
  end(reason: ListenEndReason): void {
    this.running = Math.max(0, this.running - 1);
    this.ended.inc({ reason });
  }
}
