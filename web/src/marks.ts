/**
 * The marks on a recording's timeline: pauses, DTMF digits and each participant's join and
 * leave, in time order. Pure: derived from the entry alone.
 */
import type { Recording } from './types.js';
import { clock } from './format.js';

/** The stored digit of a DTMF event when masking is on. */
export const MASKED_DTMF = '*masked*';

export type Channel = 'customer' | 'agent';

export interface Mark {
  readonly kind: 'pause' | 'dtmf' | 'join' | 'leave';
  readonly atMs: number;
  /** Pauses only: where it ends (the end of the call while still paused). */
  readonly endMs?: number;
  /** What the mark shows on the waveform: a digit, "•" for a masked one, or empty. */
  readonly glyph: string;
  /** What it says in words, for the list and for assistive technology. */
  readonly label: string;
  /** The channel the mark belongs to; undefined when it concerns the whole call. */
  readonly channel?: Channel;
}

function who(p: Recording['participants'][number]): string {
  if (p.role === 'agent') return p.agentName ?? p.agentId ?? 'agent';
  if (p.role === 'customer') return p.number ? `customer ${p.number}` : 'customer';
  return p.number ?? p.role;
}

function legChannel(r: Recording, leg: number): Channel | undefined {
  const role = r.legs.find((l) => l.index === leg)?.role;
  return role === 'customer' || role === 'agent' ? role : undefined;
}

export function marksOf(r: Recording): Mark[] {
  const marks: Mark[] = [];
  for (const p of r.pauses) {
    const endMs = p.endMs ?? r.durationMs;
    marks.push({ kind: 'pause', atMs: p.startMs, endMs, glyph: '', label: `Recording paused ${clock(p.startMs)}–${clock(endMs)}` });
  }
  for (const d of r.dtmf) {
    const masked = d.digit === MASKED_DTMF;
    const channel = legChannel(r, d.leg);
    marks.push({
      kind: 'dtmf',
      atMs: d.atMs,
      glyph: masked ? '•' : d.digit,
      label: `${masked ? 'DTMF digit (masked)' : `DTMF digit ${d.digit}`} at ${clock(d.atMs)}${channel ? ` from the ${channel}` : ''}`,
      ...(channel ? { channel } : {}),
    });
  }
  for (const p of r.participants) {
    const channel = p.role === 'customer' || p.role === 'agent' ? p.role : undefined;
    const extra = channel ? { channel } : {};
    if (p.joinedMs !== undefined) marks.push({ kind: 'join', atMs: p.joinedMs, glyph: '', label: `${who(p)} joined at ${clock(p.joinedMs)}`, ...extra });
    if (p.leftMs !== undefined) marks.push({ kind: 'leave', atMs: p.leftMs, glyph: '', label: `${who(p)} left at ${clock(p.leftMs)}`, ...extra });
  }
  return marks.sort((a, b) => a.atMs - b.atMs);
}

/** Each participant's time on the call, for the participants list: "0:00–1:23". */
export function presence(r: Recording): Array<{ who: string; role: string; from: string; to: string }> {
  return r.participants.map((p) => ({
    who: who(p),
    role: p.role,
    from: clock(p.joinedMs ?? 0),
    to: clock(p.leftMs ?? r.durationMs),
  }));
}
