/**
 * The calls in progress as others may read them: a read-only view over the call manager's
 * live sessions and their receivers' RFC 3550 figures, made when asked. Nothing is copied or
 * kept here; the manager stays the owner of every call. The API's `/calls` routes and the
 * live listener read calls only through this.
 */
import type { CallSession } from './session.js';
import type { Role } from '../types.js';
import { CODEC_IMPAIRMENT, DEFAULT_PACKET_MS, estimateQuality, roundMos } from '../quality/emodel.js';

export interface LiveLegView {
  readonly index: number;
  readonly label?: string;
  readonly role: Role;
  readonly codec: string;
  readonly packets: number;
  readonly lost: number;
  /** The current source's interarrival jitter, ms. */
  readonly jitterMs: number;
  /** Estimated MOS so far (G.107 E-model, 20 ms packets assumed); absent before audio. */
  readonly mos?: number;
}

export interface LiveCallView {
  /** The id the recording will have. */
  readonly id: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly state: string;
  readonly agentId?: string;
  readonly agentName?: string;
  readonly team?: string;
  readonly serviceNumber?: string;
  /** Masked, as in the recording. */
  readonly customerNumber?: string;
  readonly direction: string;
  readonly legs: readonly LiveLegView[];
}

/** What the view needs from the call manager (CallManager satisfies it). */
export interface LiveSessionSource {
  liveSessions(): IterableIterator<CallSession>;
  on(event: 'ended', listener: (session: CallSession, closed: Promise<void>) => void): unknown;
}

export function liveCallView(s: CallSession, now: number): LiveCallView {
  const d = s.details;
  return {
    id: s.id,
    startedAt: new Date(d.answeredAt).toISOString(),
    durationMs: Math.max(0, now - d.answeredAt),
    state: s.state,
    ...(d.agentId !== undefined ? { agentId: d.agentId } : {}),
    ...(d.agentName !== undefined ? { agentName: d.agentName } : {}),
    ...(d.team !== undefined ? { team: d.team } : {}),
    ...(d.serviceNumber !== undefined ? { serviceNumber: d.serviceNumber } : {}),
    ...(d.customerNumber !== undefined ? { customerNumber: d.customerNumber } : {}),
    direction: d.direction,
    legs: s.legs.map((leg) => {
      const r = leg.receiver.reception;
      const codec = leg.descriptor.formats.find((f) => CODEC_IMPAIRMENT[f.codec] !== undefined)?.codec ?? 'none';
      const q = estimateQuality({ codec, packets: r.packets, lost: r.lost, jitterMs: r.meanJitterMs, packetMs: DEFAULT_PACKET_MS });
      return {
        index: leg.index,
        ...(leg.descriptor.label !== undefined ? { label: leg.descriptor.label } : {}),
        role: leg.descriptor.role,
        codec,
        packets: r.packets,
        lost: r.lost,
        jitterMs: Math.round(r.jitterMs * 100) / 100,
        ...(q ? { mos: roundMos(q.mos) } : {}),
      };
    }),
  };
}

export class LiveCalls {
  /** Who waits for which call to end (one listener on the manager, however many wait). */
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(private readonly source: LiveSessionSource, private readonly now: () => number = Date.now) {
    source.on('ended', (s, closed) => {
      const fns = this.waiting.get(s.id);
      if (!fns) return;
      this.waiting.delete(s.id);
      const run = (): void => {
        for (const fn of fns) fn();
      };
      void closed.then(run, run);
    });
  }

  /** Every call in progress, oldest first. */
  list(): LiveCallView[] {
    const now = this.now();
    const out: LiveCallView[] = [];
    for (const s of this.source.liveSessions()) if (s.live) out.push(liveCallView(s, now));
    return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** One call in progress by its (recording) id. */
  session(id: string): CallSession | undefined {
    for (const s of this.source.liveSessions()) if (s.id === id && s.live) return s;
    return undefined;
  }

  view(id: string): LiveCallView | undefined {
    const s = this.session(id);
    return s ? liveCallView(s, this.now()) : undefined;
  }

  /** Calls `fn` once when the call `id` ends (its spool then has its END record); returns the unsubscribe. */
  onEnded(id: string, fn: () => void): () => void {
    let fns = this.waiting.get(id);
    if (!fns) this.waiting.set(id, (fns = new Set()));
    fns.add(fn);
    return () => {
      const set = this.waiting.get(id);
      if (!set) return;
      set.delete(fn);
      if (set.size === 0) this.waiting.delete(id);
    };
  }
}
