/** The access policy as a table: every role × action × (own, team, other recording). */
import { describe, expect, it } from 'vitest';
import { decide, scopeOf, type Subject } from '../../../src/access/policy.js';
import { ACTIONS, ROLES, type AccessAction, type AccessRole } from '../../../src/access/roles.js';

/** Y allowed, R allowed only with a reason, N refused. For own / team / other recordings. */
type Cell = 'Y' | 'R' | 'N';
type Row = Partial<Record<AccessAction, [Cell, Cell, Cell] | Cell>>;

const SEE = ['list', 'show', 'audio', 'peaks'] as const;
const EXPORTS = ['export', 'bulk-export'] as const;
const HOLDS = ['hold', 'release'] as const;
const each = (actions: readonly AccessAction[], cell: [Cell, Cell, Cell] | Cell): Row => Object.fromEntries(actions.map((a) => [a, cell]));

/** Everything not named is N. Actions without a recording (subject search, audit, users) take one cell. */
const TABLE: Record<AccessRole, Row> = {
  agent: { ...each(SEE, ['Y', 'N', 'N']), calls: ['Y', 'N', 'N'] },
  supervisor: { ...each(SEE, ['Y', 'Y', 'N']), ...each(EXPORTS, ['Y', 'Y', 'N']), ...each(HOLDS, ['Y', 'Y', 'N']), calls: ['Y', 'Y', 'N'], listen: ['R', 'R', 'N'] },
  quality: { ...each(SEE, ['Y', 'Y', 'Y']), calls: 'Y', listen: 'R' },
  maintainer: { ...each(SEE, 'R'), ...each(EXPORTS, 'R'), calls: 'R', listen: 'R' },
  security: { ...each(SEE, 'R'), ...each(EXPORTS, 'R'), ...each(HOLDS, 'R'), 'audit-read': 'Y', 'audit-verify': 'Y', calls: 'R', listen: 'R' },
  dpo: {
    ...each(['show', 'audio', 'peaks'], 'Y'),
    ...each(EXPORTS, 'Y'),
    ...each(HOLDS, 'Y'),
    erase: 'Y',
    rectify: 'Y',
    'subject-search': 'Y',
    'audit-read': 'Y',
  },
  admin: { users: 'Y' },
};

/** Actions on one recording or one live call: answered per own / team / other. */
const RECORDING_ACTIONS: readonly AccessAction[] = [...SEE, ...EXPORTS, ...HOLDS, 'erase', 'rectify', 'calls', 'listen'];
const entries = {
  own: { agentId: 'aino', team: 'helpdesk' },
  team: { agentId: 'bertta', team: 'helpdesk' },
  other: { agentId: 'cecilia', team: 'sales' },
};

function subject(role: AccessRole): Subject {
  return { roles: [role], agentId: 'aino', teams: ['helpdesk'] };
}

function outcome(s: Subject, action: AccessAction, entry: { agentId: string; team: string } | undefined): Cell {
  const bare = decide(s, action, entry);
  if (bare.allow) return 'Y';
  if (bare.code === 'reason-required') {
    expect(decide(s, action, entry, { reason: 'incident 42' }).allow).toBe(true);
    expect(decide(s, action, entry, { reason: '   ' }).allow).toBe(false);
    return 'R';
  }
  return 'N';
}

describe('access policy table', () => {
  for (const role of ROLES) {
    for (const action of ACTIONS) {
      const want = TABLE[role][action] ?? 'N';
      if (RECORDING_ACTIONS.includes(action)) {
        const cells = typeof want === 'string' ? [want, want, want] : want;
        it(`${role} ${action}: own ${cells[0]}, team ${cells[1]}, other ${cells[2]}`, () => {
          expect([outcome(subject(role), action, entries.own), outcome(subject(role), action, entries.team), outcome(subject(role), action, entries.other)]).toEqual(cells);
        });
      } else {
        it(`${role} ${action}: ${want}`, () => {
          expect(outcome(subject(role), action, undefined)).toBe(typeof want === 'string' ? want : want[0]);
        });
      }
    }
  }

  it('every refusal carries a reason naming the action', () => {
    const d = decide(subject('agent'), 'export', entries.own);
    expect(d.allow).toBe(false);
    expect(!d.allow && d.reason).toMatch(/export/);
    const r = decide(subject('maintainer'), 'audio', entries.other);
    expect(!r.allow && r.code).toBe('reason-required');
  });

  it('several roles: allowed when any allows; a reason only when every allowing role needs one', () => {
    const both: Subject = { roles: ['maintainer', 'agent'], agentId: 'aino', teams: [] };
    expect(decide(both, 'audio', entries.own)).toMatchObject({ allow: true, role: 'agent' });
    expect(decide(both, 'audio', entries.other)).toMatchObject({ allow: false, code: 'reason-required' });
    expect(decide(both, 'audio', entries.other, { reason: 'ticket 7' })).toMatchObject({ allow: true, role: 'maintainer' });
  });

  it('no role, or an agent without an agent id, sees nothing', () => {
    expect(decide({ roles: [], teams: [] }, 'show', entries.own)).toMatchObject({ allow: false, code: 'forbidden' });
    expect(decide({ roles: ['agent'], teams: [] }, 'show', entries.own).allow).toBe(false);
    expect(decide({ roles: ['supervisor'], teams: ['helpdesk'] }, 'show', { agentId: 'x' }).allow).toBe(false);
  });

  it('scope: own teams plus the [[agents]] team and supervisor_of', () => {
    const agents = [{ id: 'sari', team: 'helpdesk', supervisor_of: ['sales', 'billing'] }, { id: 'other', supervisor_of: [] }];
    expect(scopeOf({ agentId: 'sari', teams: ['night'] }, agents).sort()).toEqual(['billing', 'helpdesk', 'night', 'sales']);
    expect(scopeOf({ teams: ['night'] }, agents)).toEqual(['night']);
    expect(scopeOf({ agentId: 'unknown', teams: [] }, agents)).toEqual([]);
  });
});
