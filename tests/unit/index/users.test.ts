/** LMDB's user directory: no token secret reaches the environment's files (the rest is in tests/conformance). */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openIndex } from '../../../src/index/index.js';
import { parseToken } from '../../../src/index/users.js';
import { tempDir } from '../../support/cleanup.js';

describe('user directory on LMDB', () => {
  it('stores only the hash of each token: no secret in any file of the environment', async () => {
    const dir = tempDir('users');
    const ix = await openIndex(dir);
    await ix.users.addUser({ name: 'sari', roles: ['supervisor'], teams: ['helpdesk'] });
    const secrets: string[] = [];
    for (const expires of [undefined, '2026-11-24T11:00:00Z']) {
      const made = await ix.users.createToken('sari', expires);
      secrets.push(parseToken(made.token)!.secret);
    }
    const revoked = parseToken((await ix.users.createToken('sari', undefined)).token)!;
    secrets.push(revoked.secret);
    await ix.users.revokeToken(revoked.id);
    await ix.close();
    const files = readdirSync(join(dir, 'index'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(join(dir, 'index', f));
      for (const secret of secrets) expect(bytes.includes(Buffer.from(secret))).toBe(false);
    }
  });
});
