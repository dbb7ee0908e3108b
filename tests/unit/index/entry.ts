/** A synthetic index entry for tests: no real person's data. */
import type { RecordingEntry } from '../../../src/types.js';

export function makeEntry(id: string, startMs: number, over: Partial<RecordingEntry> = {}): RecordingEntry {
  const durationMs = 60_000;
  return {
    id,
    callId: `call-${id}`,
    siprec: true,
    answeredAt: startMs,
    direction: 'inbound',
    participants: [],
    startedAt: new Date(startMs).toISOString(),
    endedAt: new Date(startMs + durationMs).toISOString(),
    durationMs,
    status: 'complete',
    endReason: 'bye',
    legs: [],
    pauses: [],
    dtmf: [],
    file: `recordings/2026/01/01/${id}.opus`,
    fileBytes: 1000,
    sampleRate: 8000,
    channels: 2,
    ...over,
  };
}

/** A ULID-shaped id whose time part is `ms` (so the orphan sweep can age it). */
export function ulidAt(ms: number, n: number): string {
  const A = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let t = '';
  let v = ms;
  for (let i = 0; i < 10; i++) {
    t = A[v % 32]! + t;
    v = Math.floor(v / 32);
  }
  let r = '';
  let m = n;
  for (let i = 0; i < 16; i++) {
    r = A[m % 32]! + r;
    m = Math.floor(m / 32);
  }
  return t + r;
}
