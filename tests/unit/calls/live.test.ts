/** LiveCalls: a read-only view over the manager's live sessions, and who waits for a call to end. */
import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { LiveCalls } from '../../../src/calls/live.js';
import type { CallSession } from '../../../src/calls/session.js';
import { LegReception } from '../../../src/rtp/stats.js';

function session(id: string, answeredAt: number, state = 'recording'): CallSession {
  const reception = new LegReception();
  for (let i = 0; i < 100; i++) if (i !== 50) reception.update(1, i, i * 160, answeredAt + i * 20, 8000);
  return {
    id,
    state,
    live: state !== 'ended',
    details: { answeredAt, agentId: 'aino', agentName: 'Aino', team: 'helpdesk', serviceNumber: '+35810100', customerNumber: '+358401234***', direction: 'inbound' },
    legs: [{ index: 0, descriptor: { index: 0, role: 'customer', channel: 0, formats: [{ pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 }] }, receiver: { reception } }],
  } as unknown as CallSession;
}

class FakeManager extends EventEmitter<{ ended: [CallSession, Promise<void>] }> {
  sessions: CallSession[] = [];
  liveSessions(): IterableIterator<CallSession> {
    return this.sessions.values();
  }
}

describe('LiveCalls', () => {
  it('shows the calls in progress with their legs read from the receivers, oldest first', () => {
    const m = new FakeManager();
    m.sessions = [session('B', 2_000), session('A', 1_000), session('C', 500, 'ended')];
    const calls = new LiveCalls(m, () => 11_000);
    const list = calls.list();
    expect(list.map((c) => c.id)).toEqual(['A', 'B']);
    expect(list[0]).toMatchObject({ durationMs: 10_000, agentName: 'Aino', team: 'helpdesk', state: 'recording' });
    const leg = list[0]!.legs[0]!;
    expect(leg).toMatchObject({ role: 'customer', codec: 'PCMU', packets: 99, lost: 1 });
    expect(leg.mos).toBeGreaterThan(4);
    expect(leg.mos).toBeLessThan(4.4);
    expect(calls.session('C')).toBeUndefined();
    expect(calls.view('B')?.durationMs).toBe(9_000);
  });

  it('tells each waiter once the call has ended and its spool is closed, and forgets those who stopped waiting', async () => {
    const m = new FakeManager();
    const a = session('A', 0);
    m.sessions = [a];
    const calls = new LiveCalls(m);
    const told: string[] = [];
    calls.onEnded('A', () => told.push('first'));
    const off = calls.onEnded('A', () => told.push('gone'));
    calls.onEnded('B', () => told.push('other call'));
    off();
    let close!: () => void;
    m.emit('ended', a, new Promise<void>((r) => (close = r)));
    await Promise.resolve();
    expect(told).toEqual([]);
    close();
    await new Promise((r) => setImmediate(r));
    expect(told).toEqual(['first']);
    expect(m.listenerCount('ended')).toBe(1);
  });
});
