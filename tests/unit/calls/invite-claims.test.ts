/**
 * INVITE claims: the lease name hides the Call-ID and tags and differs when any of the three
 * parts of a merged request differs; a register that cannot be reached lets the call through.
 */
import { describe, expect, it } from 'vitest';
import { InviteClaims, inviteClaimName } from '../../../src/calls/invite-claims.js';
import { createLogger } from '../../../src/log.js';

describe('INVITE claims', () => {
  it('names a claim by a hash of Call-ID, From tag and CSeq', () => {
    const name = inviteClaimName('a84b4c76e66710@pc33.atlanta.com', '1928301774', 314159);
    expect(name).toMatch(/^invite:[0-9a-f]{64}$/);
    expect(name).not.toContain('atlanta');
    expect(inviteClaimName('a84b4c76e66710@pc33.atlanta.com', '1928301774', 314159)).toBe(name);
    for (const other of [inviteClaimName('x@pc33.atlanta.com', '1928301774', 314159), inviteClaimName('a84b4c76e66710@pc33.atlanta.com', '1', 314159), inviteClaimName('a84b4c76e66710@pc33.atlanta.com', '1928301774', 1)]) {
      expect(other).not.toBe(name);
    }
  });

  it('takes the call when the register cannot be asked', async () => {
    const down = { claimLease: () => Promise.reject(new Error('connection refused')), releaseLease: () => Promise.reject(new Error('connection refused')) };
    const claims = new InviteClaims(down, 'rec-a', createLogger('silent'));
    expect(await claims.claim(inviteClaimName('c', 't', 1), 'd')).toBe(true);
    claims.release(inviteClaimName('c', 't', 1), 'd');
  });
});
