/** Users and API tokens in the index: only hashes stored, refusals by cause, audited changes. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openIndex, type RecordingIndex } from '../../../src/index/index.js';
import { parseToken } from '../../../src/index/users.js';

let dir: string;
let ix: RecordingIndex;
afterEach(async () => {
  await ix?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function open(now = () => Date.parse('2026-11-24T10:00:00Z')): Promise<RecordingIndex> {
  dir = mkdtempSync(join(tmpdir(), 'tallenne-users-'));
  ix = await openIndex(dir, { now });
  return ix;
}

describe('user directory', () => {
  it('stores only the hash of a token; checks it; refuses revoked, expired, disabled and expired users', async () => {
    const now = Date.parse('2026-11-24T10:00:00Z');
    await open();
    await ix.users.addUser({ name: 'sari', roles: ['supervisor'], teams: ['helpdesk'] }, { actor: 'admin', action: 'user-add' });
    await expect(ix.users.addUser({ name: 'sari', roles: ['agent'], teams: [] })).rejects.toThrow(/exists/);
    await expect(ix.users.addUser({ name: '../x', roles: ['agent'], teams: [] })).rejects.toThrow(/not a user name/);
    const { token, record } = await ix.users.createToken('sari', undefined, { actor: 'admin', action: 'token-create' });
    const p = parseToken(token)!;
    expect(p.id).toBe(record.id);
    expect(await ix.users.checkToken(p.id, p.secret, now)).toMatchObject({ ok: true, user: { name: 'sari' } });
    expect((await ix.users.checkToken(p.id, p.secret.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), now))).toEqual({ ok: false, why: 'unknown' });

    const expiring = await ix.users.createToken('sari', '2026-11-24T11:00:00Z');
    const e = parseToken(expiring.token)!;
    expect((await ix.users.checkToken(e.id, e.secret, now)).ok).toBe(true);
    expect(await ix.users.checkToken(e.id, e.secret, Date.parse('2026-11-24T11:00:00Z'))).toEqual({ ok: false, why: 'expired' });

    await ix.users.revokeToken(p.id, { actor: 'admin', action: 'token-revoke' });
    expect(await ix.users.checkToken(p.id, p.secret, now)).toEqual({ ok: false, why: 'revoked' });

    await ix.users.addUser({ name: 'temp', roles: ['quality'], teams: [], expiresAt: '2026-11-25T00:00:00Z' });
    const t = parseToken((await ix.users.createToken('temp', undefined)).token)!;
    expect((await ix.users.checkToken(t.id, t.secret, now)).ok).toBe(true);
    expect(await ix.users.checkToken(t.id, t.secret, Date.parse('2026-11-26T00:00:00Z'))).toEqual({ ok: false, why: 'user-expired' });
    await ix.users.disableUser('temp');
    expect(await ix.users.checkToken(t.id, t.secret, now)).toEqual({ ok: false, why: 'user-disabled' });
    await expect(ix.users.createToken('temp', undefined)).rejects.toThrow(/disabled/);
    await expect(ix.users.createToken('nobody', undefined)).rejects.toThrow(/no user/);

    await ix.close();
    // No token secret anywhere in the environment's files.
    for (const f of readdirSync(join(dir, 'index'))) {
      const bytes = readFileSync(join(dir, 'index', f));
      for (const secret of [p.secret, e.secret, t.secret]) expect(bytes.includes(Buffer.from(secret))).toBe(false);
    }
    ix = await openIndex(dir);
    const actions = (await ix.audit.list({ limit: 100 })).map((a) => a.action);
    expect(actions).toEqual(['user-add', 'token-create', 'token-revoke']);
  });

  it('keeps single-sign-on users for the access review without touching a local user of the same name', async () => {
    await open();
    await ix.users.addUser({ name: 'aino', roles: ['agent'], agentId: 'aino', teams: [] });
    await ix.users.noteExternal({ name: 'aino', roles: ['admin'], teams: [] }, Date.parse('2026-11-24T12:00:00Z'));
    await ix.users.noteExternal({ name: 'olli', roles: ['quality'], teams: ['x'] }, Date.parse('2026-11-24T12:00:00Z'));
    const users = Object.fromEntries((await ix.users.listUsers()).map((u) => [u.name, u]));
    expect(users.aino).toMatchObject({ source: 'local', roles: ['agent'], lastUsedAt: '2026-11-24T12:00:00.000Z' });
    expect(users.olli).toMatchObject({ source: 'oidc', roles: ['quality'], teams: ['x'] });
  });
});
