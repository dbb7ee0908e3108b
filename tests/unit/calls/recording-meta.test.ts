/** The pure builders of what is stored about a call: details, participants over time, legs, entry. */
import { describe, expect, it } from 'vitest';
import { entryFrom, initialDetails, legDescriptor, participantsFrom, updatedDetails, type ProtectNumber } from '../../../src/calls/recording-meta.js';
import type { AssignedParticipant, RoleAssignment } from '../../../src/calls/roles.js';
import type { EncodeResult } from '../../../src/encoder/encode-spool.js';
import type { MediaFormat } from '../../../src/types.js';

const protect: ProtectNumber = (user) => ({ masked: `${user.slice(0, -3)}***`, hash: `hash${user.length}` });
const PCMU: MediaFormat = { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 };

const party = (id: string, over: Partial<AssignedParticipant> = {}): AssignedParticipant => ({ id, role: 'other', organisation: false, sendsLabels: [], ...over });

function roles(participants: AssignedParticipant[], over: Partial<RoleAssignment> = {}): RoleAssignment {
  return { direction: 'inbound', legs: [{ index: 0, role: 'customer', channel: 0, label: '1' }, { index: 1, role: 'agent', channel: 1, label: '2' }], participants, ...over };
}

const CUSTOMER = party('c', { role: 'customer', user: '+358401234567', sendsLabels: ['1'] });
const AINO = party('a', { role: 'agent', user: '1001', organisation: true, agentId: 'aino', agentName: 'Aino', sendsLabels: ['2'] });
const BEN = party('b', { role: 'agent', user: '1002', organisation: true, agentId: 'ben', agentName: 'Ben', sendsLabels: ['2'] });

const answer = roles([CUSTOMER, AINO], { customer: { participantId: 'c', user: '+358401234567' }, agent: { participantId: 'a', agentId: 'aino', agentName: 'Aino', team: 't1' } });

describe('recording metadata', () => {
  it('masks the customer at answer, keeps the organisation in clear, everyone joined at 0', () => {
    const d = initialDetails({ id: 'r1', callId: 'x@y', siprec: true, answeredAt: 1000, roles: answer, metadata: undefined, protect, node: 'rec-1' });
    expect(d).toMatchObject({ id: 'r1', node: 'rec-1', siprec: true, direction: 'inbound', customerNumber: '+358401234***', customerNumberHash: 'hash13', agentId: 'aino', team: 't1' });
    expect(d.participants).toEqual([
      { id: 'c', role: 'customer', number: '+358401234***', sends: ['1'], joinedMs: 0 },
      { id: 'a', role: 'agent', number: '1001', agentId: 'aino', agentName: 'Aino', sends: ['2'], joinedMs: 0 },
    ]);
    expect(JSON.stringify(d)).not.toContain('+358401234567');
  });

  it('a snapshot without a party marks it left; a new party joins; sends accumulate; a return clears nothing twice', () => {
    const before = participantsFrom(answer, 0, [], protect);
    const later = participantsFrom(roles([CUSTOMER, { ...BEN, sendsLabels: ['3'] }]), 5000, before, protect);
    expect(later.map((p) => [p.id, p.joinedMs, p.leftMs])).toEqual([['c', 0, undefined], ['a', 0, 5000], ['b', 5000, undefined]]);
    const again = participantsFrom(roles([CUSTOMER, BEN]), 9000, later, protect);
    expect(again.find((p) => p.id === 'a')!.leftMs).toBe(5000);
    expect(again.find((p) => p.id === 'b')!.sends).toEqual(['3', '2']);
  });

  it('a party the metadata marks as left gets its leaving time once and keeps its role', () => {
    const before = participantsFrom(answer, 0, [], protect);
    const left = participantsFrom(roles([{ ...CUSTOMER, left: true }, AINO]), 4000, before, protect);
    expect(left[0]).toMatchObject({ id: 'c', role: 'customer', joinedMs: 0, leftMs: 4000 });
    expect(participantsFrom(roles([{ ...CUSTOMER, left: true }, AINO]), 7000, left, protect)[0]!.leftMs).toBe(4000);
  });

  it('updated details follow the new roles, and keep the customer or agent the new roles do not name', () => {
    const d0 = initialDetails({ id: 'r1', callId: 'x@y', siprec: true, answeredAt: 1000, roles: answer, metadata: undefined, protect, node: 'rec-1' });
    const transfer = updatedDetails(d0, roles([CUSTOMER, BEN], { customer: { participantId: 'c', user: '+358401234567' }, agent: { participantId: 'b', agentId: 'ben', agentName: 'Ben' } }), undefined, 3000, protect);
    expect([transfer.agentId, transfer.agentName, transfer.team, transfer.customerNumber]).toEqual(['ben', 'Ben', undefined, '+358401234***']);
    const noOne = updatedDetails(d0, roles([party('x')], { direction: 'unknown' }), { dataMode: 'complete', dialect: 'rfc7865', sessionId: 's9', sipSessionIds: [], participants: [], streams: [], extensions: {} }, 3000, protect);
    expect([noOne.direction, noOne.agentId, noOne.customerNumber, noOne.siprecSessionId]).toEqual(['unknown', 'aino', '+358401234***', 's9']);
  });

  it('a leg descriptor takes its role and channel from the assignment, else the fallback', () => {
    expect(legDescriptor({ index: 1, label: '2' }, [PCMU], answer, 0)).toEqual({ index: 1, label: '2', role: 'agent', channel: 1, formats: [PCMU] });
    expect(legDescriptor({ index: 4 }, [PCMU], answer, 1)).toEqual({ index: 4, role: 'other', channel: 1, formats: [PCMU] });
    expect(legDescriptor({ index: 0 }, [PCMU], null, 0)).toEqual({ index: 0, role: 'other', channel: 0, formats: [PCMU] });
  });

  it('the index entry of an encoded recording carries the details and the results, not the descriptors', () => {
    const d = initialDetails({ id: 'r1', callId: 'x@y', siprec: false, answeredAt: Date.UTC(2026, 0, 1), roles: answer, metadata: undefined, protect, node: 'rec-1' });
    const r = {
      meta: { ...d, legs: [legDescriptor({ index: 0 }, [PCMU], answer, 0)] }, staged: { key: 'recordings/2026/01/01/r1.opus', bytes: 10, storedBytes: 10, sha256: 'cd'.repeat(32), encrypted: false, area: { kind: 'local', dir: '/nowhere' } }, answeredAt: d.answeredAt, endedAt: d.answeredAt + 2000,
      durationMs: 2000, status: 'complete', endReason: 'bye', legs: [], pauses: [], dtmf: [], sampleRate: 8000, channels: 2, audioMs: 2000, encodeCpuMs: 5, framesEncoded: 1, framesSkipped: 0, spoolRecordsRejected: 0,
    } satisfies EncodeResult;
    const e = entryFrom(r, { key: r.staged.key, bytes: 10, storedBytes: 10, sha256: r.staged.sha256 });
    expect([e.startedAt, e.endedAt, e.durationMs, e.file, e.fileBytes, e.fileSha256, e.agentId]).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:02.000Z', 2000, r.staged.key, 10, r.staged.sha256, 'aino']);
    expect(e.legs).toEqual([]);
  });
});
