/**
 * The conformance suite of the register seam: every RecordingIndex backend (LMDB, PostgreSQL)
 * runs it against itself through `describeIndexConformance(name, open)`. It speaks only the
 * interface (src/index/index.ts with its AuditLog and UserDirectory); anything a backend does
 * differently inside (LMDB's full-scan proof through `visited`) is tested beside that backend.
 *
 * `open` gives a fresh, empty register for each test; `nodeId` is the node its audit entries
 * must name. Entries are synthetic (tests/unit/index/entry.ts): no real person's data.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import type { RecordingIndex, DestroyIntent, ListQuery } from '../../src/index/index.js';
import { auditHash } from '../../src/index/audit.js';
import { parseToken } from '../../src/index/users.js';
import type { RecordingEntry } from '../../src/types.js';
import type { WrappedKey } from '../../src/crypto/keyring.js';
import { makeEntry } from '../unit/index/entry.js';

export interface ConformanceOpenOptions {
  /** `[cluster] node_id` the register's audit entries must carry. */
  readonly nodeId: string;
}

export type OpenRegister = (opts: ConformanceOpenOptions) => Promise<{ index: RecordingIndex; close(): Promise<void> }>;

const T0 = Date.UTC(2026, 2, 1);
const MIN = 60_000;
const NODE = 'node-a';

function wrapped(keyId: string, n: number): WrappedKey {
  return { keyId, iv: Buffer.from(`iv-${n}`).toString('base64'), data: Buffer.from(`key-${keyId}-${n}`).toString('base64') };
}

function retained(e: RecordingEntry, audioMs: number, metadataMs: number): RecordingEntry {
  return { ...e, retention: { policy: 'p', audioExpiresAt: new Date(audioMs).toISOString(), metadataExpiresAt: new Date(metadataMs).toISOString() } };
}

const intentOf = (kind: DestroyIntent['kind'], file?: string): DestroyIntent => ({
  kind,
  ...(file !== undefined ? { file } : {}),
  at: new Date(T0).toISOString(),
  actor: 'system:purge',
  action: kind === 'audio' ? 'purge-audio' : 'purge-recording',
  details: { policy: 'p' },
});

/** Every page of a query, with the page sizes seen. */
async function allPages(ix: RecordingIndex, q: ListQuery, limit: number): Promise<{ ids: string[]; sizes: number[] }> {
  const ids: string[] = [];
  const sizes: number[] = [];
  let cursor: string | undefined;
  for (let round = 0; round < 1000; round++) {
    const page = await ix.list(q, cursor === undefined ? { limit } : { cursor, limit });
    ids.push(...page.items.map((e) => e.id));
    sizes.push(page.items.length);
    cursor = page.nextCursor;
    if (cursor === undefined) return { ids, sizes };
  }
  throw new Error('the cursor never ran out');
}

/** Newest first: start time descending, then id descending for equal times. */
function newestFirst(entries: RecordingEntry[]): string[] {
  return [...entries].sort((a, b) => b.answeredAt - a.answeredAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0)).map((e) => e.id);
}

export function describeIndexConformance(name: string, open: OpenRegister): void {
  describe(`RecordingIndex conformance: ${name}`, () => {
    let ix: RecordingIndex;
    let closeIt: () => Promise<void>;

    beforeEach(async () => {
      const r = await open({ nodeId: NODE });
      ix = r.index;
      closeIt = () => r.close();
    });

    afterEach(async () => {
      await closeIt();
    });

    describe('entries', () => {
      it('puts, gets, replaces and counts entries; an unknown id is undefined', async () => {
        expect(await ix.count()).toBe(0);
        await ix.put(makeEntry('e1', T0, { agentId: 'ag1', team: 't1' }));
        await ix.put(makeEntry('e2', T0 + MIN));
        expect(await ix.get('e1')).toEqual(makeEntry('e1', T0, { agentId: 'ag1', team: 't1' }));
        expect(await ix.get('nope')).toBeUndefined();
        expect(await ix.get('')).toBeUndefined();
        await ix.put(makeEntry('e1', T0, { agentId: 'ag2' }));
        expect(await ix.count()).toBe(2);
        expect((await ix.get('e1'))?.team).toBeUndefined();
        expect((await ix.list({ agentId: 'ag1' }, { limit: 10 })).items).toEqual([]);
        expect((await ix.list({ agentId: 'ag2' }, { limit: 10 })).items.map((e) => e.id)).toEqual(['e1']);
        await expect(ix.put(makeEntry('', T0))).rejects.toThrow();
      });

      it('updates by patch and by function; undefined removes a field; the secondary indexes follow', async () => {
        await ix.put(makeEntry('u1', T0, { agentId: 'ag1', team: 't1', serviceNumber: '+358200' }));
        const after = await ix.update('u1', { agentId: 'ag9', team: undefined });
        expect(after.agentId).toBe('ag9');
        expect('team' in after).toBe(false);
        expect(await ix.get('u1')).toEqual(after);
        expect('team' in (await ix.get('u1'))!).toBe(false);
        expect((await ix.list({ team: 't1' }, { limit: 10 })).items).toEqual([]);
        expect((await ix.list({ agentId: 'ag9' }, { limit: 10 })).items.map((e) => e.id)).toEqual(['u1']);

        const fn = await ix.update('u1', (e) => ({ ...e, status: 'truncated', serviceNumber: undefined }) as RecordingEntry);
        expect(fn.status).toBe('truncated');
        expect('serviceNumber' in (await ix.get('u1'))!).toBe(false);
        expect((await ix.list({ status: 'truncated' }, { limit: 10 })).items.map((e) => e.id)).toEqual(['u1']);
        expect((await ix.list({ serviceNumber: '+358200' }, { limit: 10 })).items).toEqual([]);

        await expect(ix.update('missing', { team: 'x' })).rejects.toMatchObject({ code: 'TALLENNE_NOT_FOUND' });
        await expect(ix.update('u1', (e) => ({ ...e, id: 'other' }))).rejects.toThrow();
        await expect(
          ix.update('u1', () => {
            throw new Error('refused by the patch');
          }),
        ).rejects.toThrow('refused by the patch');
        expect((await ix.get('u1'))?.status).toBe('truncated');
      });

      it('removes an entry (true once, then false) and its lookups', async () => {
        await ix.put(makeEntry('r1', T0, { agentId: 'ag' }));
        expect(await ix.remove('r1')).toBe(true);
        expect(await ix.remove('r1')).toBe(false);
        expect(await ix.get('r1')).toBeUndefined();
        expect(await ix.count()).toBe(0);
        expect((await ix.list({ agentId: 'ag' }, { limit: 10 })).items).toEqual([]);
        expect((await ix.list({}, { limit: 10 })).items).toEqual([]);
      });
    });

    describe('list', () => {
      const entries: RecordingEntry[] = [];
      for (let i = 0; i < 24; i++) {
        // Pairs share a start time, so ties are ordered too (by id).
        const t = T0 + Math.floor(i / 2) * MIN;
        entries.push(
          makeEntry(`L${String(i).padStart(2, '0')}`, t, {
            agentId: `ag${i % 3}`,
            team: `t${i % 2}`,
            serviceNumber: `+35820${i % 4}`,
            customerNumberHash: `h${i % 5}`,
            groupId: `g${i % 6}`,
            status: i % 7 === 0 ? 'truncated' : 'complete',
          }),
        );
      }
      const fill = async () => {
        for (const e of [...entries].reverse()) await ix.put(e);
      };

      it('lists newest first, paging with cursors without gaps or repeats', async () => {
        await fill();
        const first = await ix.list({}, { limit: 10 });
        expect(first.items.map((e) => e.id)).toEqual(newestFirst(entries).slice(0, 10));
        expect(first.nextCursor).toBeDefined();
        const { ids, sizes } = await allPages(ix, {}, 10);
        expect(ids).toEqual(newestFirst(entries));
        expect(sizes).toEqual([10, 10, 4]);
        const whole = await ix.list({}, { limit: 24 });
        expect(whole.items).toHaveLength(24);
        expect(whole.nextCursor).toBeUndefined();
      });

      it('filters by every field, alone and combined, each through pages', async () => {
        await fill();
        const cases: Array<[ListQuery, (e: RecordingEntry) => boolean]> = [
          [{ agentId: 'ag1' }, (e) => e.agentId === 'ag1'],
          [{ team: 't0' }, (e) => e.team === 't0'],
          [{ serviceNumber: '+358203' }, (e) => e.serviceNumber === '+358203'],
          [{ status: 'truncated' }, (e) => e.status === 'truncated'],
          [{ numberHash: 'h2' }, (e) => e.customerNumberHash === 'h2'],
          [{ groupId: 'g5' }, (e) => e.groupId === 'g5'],
          [{ from: T0 + 3 * MIN, to: T0 + 8 * MIN }, (e) => e.answeredAt >= T0 + 3 * MIN && e.answeredAt < T0 + 8 * MIN],
          [{ from: T0 + 10 * MIN }, (e) => e.answeredAt >= T0 + 10 * MIN],
          [{ to: T0 + 2 * MIN }, (e) => e.answeredAt < T0 + 2 * MIN],
          [{ agentId: 'ag0', team: 't1' }, (e) => e.agentId === 'ag0' && e.team === 't1'],
          [{ numberHash: 'h0', status: 'complete', from: T0 + MIN }, (e) => e.customerNumberHash === 'h0' && e.status === 'complete' && e.answeredAt >= T0 + MIN],
          [{ agentId: 'nobody' }, () => false],
        ];
        for (const [q, keep] of cases) {
          const want = newestFirst(entries.filter(keep));
          const { ids, sizes } = await allPages(ix, q, 3);
          expect(ids, JSON.stringify(q)).toEqual(want);
          for (const n of sizes) expect(n).toBeLessThanOrEqual(3);
        }
      });

      it('refuses a cursor it did not give out', async () => {
        await fill();
        await expect(ix.list({}, { cursor: 'not-a-cursor!', limit: 5 })).rejects.toMatchObject({ code: 'TALLENNE_NOT_FOUND' });
      });
    });

    describe('expiry, holds and destruction intents', () => {
      it('returns what has expired, by expiry time, honouring holds and purged audio', async () => {
        await ix.put(retained(makeEntry('x1', T0), T0 + 1000, T0 + 5000));
        await ix.put(retained(makeEntry('x2', T0), T0 + 2000, T0 + 4000));
        await ix.put(retained(makeEntry('x3', T0), T0 + 3000, T0 + 6000));
        await ix.put(makeEntry('x4', T0)); // no retention: never expires
        expect(await ix.expiredAudio(T0 + 999, 10)).toEqual([]);
        expect((await ix.expiredAudio(T0 + 1000, 10)).map((e) => e.id)).toEqual(['x1']);
        expect((await ix.expiredAudio(T0 + 3000, 10)).map((e) => e.id)).toEqual(['x1', 'x2', 'x3']);
        expect((await ix.expiredAudio(T0 + 3000, 2)).map((e) => e.id)).toEqual(['x1', 'x2']);
        expect((await ix.expiredMetadata(T0 + 5000, 10)).map((e) => e.id)).toEqual(['x2', 'x1']);

        await ix.update('x1', { hold: { reason: 'case 7', by: 'dpo', at: new Date(T0).toISOString() } });
        await ix.update('x2', { hold: { reason: 'case 8', by: 'dpo', at: new Date(T0).toISOString(), until: new Date(T0 + 2500).toISOString() } });
        await ix.update('x3', { audioPurgedAt: new Date(T0 + 3000).toISOString() });
        expect(await ix.expiredAudio(T0 + 2499, 10)).toEqual([]);
        expect((await ix.expiredAudio(T0 + 2500, 10)).map((e) => e.id)).toEqual(['x2']);
        expect((await ix.expiredMetadata(T0 + 1e9, 10)).map((e) => e.id)).toEqual(['x2', 'x3']);
        await ix.update('x1', { hold: undefined });
        expect((await ix.expiredAudio(T0 + 2500, 10)).map((e) => e.id)).toEqual(['x1', 'x2']);
      });

      it('records an intent only while its conditions hold, shredding the data key in the same write', async () => {
        await ix.put(retained(makeEntry('i1', T0, { dataKey: wrapped('mk1', 1) }), T0 + 1000, T0 + 5000));
        await ix.put(retained(makeEntry('i2', T0), T0 + 1000, T0 + 5000));
        await ix.update('i2', { hold: { reason: 'case', by: 'dpo', at: new Date(T0).toISOString() } });

        expect(await ix.setIntent('gone', intentOf('recording'))).toBe(false);
        expect(await ix.setIntent('i1', intentOf('audio', 'a/i1.opus'), { expiredBy: T0 + 999 })).toBe(false);
        expect(await ix.setIntent('i1', intentOf('recording'), { expiredBy: T0 + 1000 })).toBe(false); // metadata not due
        expect(await ix.setIntent('i2', intentOf('audio'), { notHeld: true })).toBe(false);
        expect(await ix.setIntent('i2', intentOf('audio'), { expiredBy: T0 + 1e9 })).toBe(false); // held without end
        expect(await ix.getIntent('i1')).toBeUndefined();
        expect((await ix.get('i1'))?.dataKey).toEqual(wrapped('mk1', 1));

        expect(await ix.setIntent('i1', intentOf('audio', 'a/i1.opus'), { expiredBy: T0 + 1000, notHeld: true })).toBe(true);
        expect(await ix.getIntent('i1')).toEqual(intentOf('audio', 'a/i1.opus'));
        expect((await ix.get('i1'))?.dataKey).toBeUndefined();
        expect(await ix.dataKeyUsage()).toEqual([]);
        expect(await ix.setIntent('i2', intentOf('recording'))).toBe(true);
        expect((await ix.intents(10)).sort((a, b) => a.id.localeCompare(b.id))).toEqual([
          { id: 'i1', intent: intentOf('audio', 'a/i1.opus') },
          { id: 'i2', intent: intentOf('recording') },
        ]);
        expect(await ix.intents(1)).toHaveLength(1);

        await ix.update('i1', { audioPurgedAt: new Date(T0).toISOString() }, { clearIntent: true, audit: { actor: 'system:purge', action: 'purge-audio', recordingId: 'i1' } });
        expect(await ix.getIntent('i1')).toBeUndefined();
        expect(await ix.remove('i2')).toBe(true);
        expect(await ix.intents(10)).toEqual([]);
        expect((await ix.audit.list({ limit: 10 })).map((e) => [e.action, e.recordingId])).toEqual([['purge-audio', 'i1']]);
      });
    });

    describe('data keys and marks', () => {
      it('counts data keys per master key, lists them, and rewraps only what is still under the old key', async () => {
        for (let i = 0; i < 5; i++) await ix.put(makeEntry(`k${i}`, T0 + i, { dataKey: wrapped(i < 3 ? 'mkA' : 'mkB', i) }));
        await ix.put(makeEntry('plain', T0));
        expect((await ix.dataKeyUsage()).sort((a, b) => a.keyId.localeCompare(b.keyId))).toEqual([
          { keyId: 'mkA', recordings: 3 },
          { keyId: 'mkB', recordings: 2 },
        ]);
        expect((await ix.wrappedUnder('mkA', 10)).map((e) => e.id).sort()).toEqual(['k0', 'k1', 'k2']);
        expect(await ix.wrappedUnder('mkA', 2)).toHaveLength(2);
        expect(await ix.wrappedUnder('mkZ', 10)).toEqual([]);

        const n = await ix.rewrapDataKeys([
          { id: 'k0', fromKeyId: 'mkA', wrapped: wrapped('mkC', 0) },
          { id: 'k3', fromKeyId: 'mkA', wrapped: wrapped('mkC', 3) }, // under mkB: skipped
          { id: 'plain', fromKeyId: 'mkA', wrapped: wrapped('mkC', 9) }, // no key: skipped
          { id: 'gone', fromKeyId: 'mkA', wrapped: wrapped('mkC', 8) },
        ]);
        expect(n).toBe(1);
        expect((await ix.get('k0'))?.dataKey).toEqual(wrapped('mkC', 0));
        expect((await ix.get('k3'))?.dataKey).toEqual(wrapped('mkB', 3));
        expect((await ix.get('plain'))?.dataKey).toBeUndefined();
        expect((await ix.dataKeyUsage()).sort((a, b) => a.keyId.localeCompare(b.keyId))).toEqual([
          { keyId: 'mkA', recordings: 2 },
          { keyId: 'mkB', recordings: 2 },
          { keyId: 'mkC', recordings: 1 },
        ]);
      });

      it('keeps named marks, removes them with undefined, and audits with them', async () => {
        expect(await ix.getMark('rotation')).toBeUndefined();
        await ix.setMark('rotation', { to: 'mk2', n: 1 }, { audit: { actor: 'admin', action: 'keys-rotate-start' } });
        expect(await ix.getMark<{ to: string; n: number }>('rotation')).toEqual({ to: 'mk2', n: 1 });
        await ix.setMark('rotation', undefined);
        expect(await ix.getMark('rotation')).toBeUndefined();
        expect((await ix.audit.list({ limit: 10 })).map((e) => e.action)).toEqual(['keys-rotate-start']);
      });
    });

    describe('audit log', () => {
      it('chains entries, stamps this node, pages them, and verifies', async () => {
        expect(await ix.audit.verify()).toEqual({ ok: true, entries: 0 });
        const a = await ix.audit.append({ actor: 'alice', action: 'show', recordingId: 'r1', reason: 'complaint 12', details: { n: 1, ok: true, s: 'x' } });
        expect(a).toMatchObject({ seq: 1, actor: 'alice', action: 'show', recordingId: 'r1', reason: 'complaint 12', details: { n: 1, ok: true, s: 'x' }, node: NODE });
        expect(a.prevHash).toBe('0'.repeat(64));
        const { hash, ...rest } = a;
        expect(auditHash(rest)).toBe(hash);
        await ix.put(makeEntry('r1', T0), { audit: { actor: 'bob', action: 'store', recordingId: 'r1' } });
        await ix.remove('r1', { audit: { actor: 'carol', action: 'erase', recordingId: 'r1' } });
        await ix.audit.append({ actor: 'dave', action: 'list' });

        const all = await ix.audit.list({ limit: 100 });
        expect(all.map((e) => [e.seq, e.actor, e.node])).toEqual([
          [1, 'alice', NODE],
          [2, 'bob', NODE],
          [3, 'carol', NODE],
          [4, 'dave', NODE],
        ]);
        for (let i = 1; i < all.length; i++) expect(all[i]!.prevHash).toBe(all[i - 1]!.hash);
        expect((await ix.audit.list({ after: 2, limit: 1 })).map((e) => e.seq)).toEqual([3]);
        expect(await ix.audit.list({ after: 4, limit: 10 })).toEqual([]);
        expect(await ix.audit.verify()).toEqual({ ok: true, entries: 4 });
      });
    });

    describe('users and tokens', () => {
      it('adds users once, issues tokens stored as hashes, and refuses revoked, expired and disabled ones', async () => {
        const now = T0;
        const u = await ix.users.addUser({ name: 'sari', roles: ['supervisor'], teams: ['t1'], agentId: 'ag1' }, { actor: 'admin', action: 'user-add' });
        expect(u).toMatchObject({ name: 'sari', roles: ['supervisor'], teams: ['t1'], agentId: 'ag1', source: 'local' });
        await expect(ix.users.addUser({ name: 'sari', roles: ['agent'], teams: [] })).rejects.toThrow();
        await expect(ix.users.addUser({ name: 'bad name', roles: ['agent'], teams: [] })).rejects.toThrow();
        expect(await ix.users.getUser('sari')).toEqual(u);
        expect(await ix.users.getUser('nobody')).toBeUndefined();

        const made = await ix.users.createToken('sari', undefined, { actor: 'admin', action: 'token-create' });
        const p = parseToken(made.token)!;
        expect(p.id).toBe(made.record.id);
        expect(JSON.stringify(await ix.users.getToken(p.id))).not.toContain(p.secret);
        expect(await ix.users.checkToken(p.id, p.secret, now)).toMatchObject({ ok: true, user: { name: 'sari' }, token: { id: p.id } });
        expect(await ix.users.checkToken(p.id, p.secret.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), now)).toEqual({ ok: false, why: 'unknown' });
        expect(await ix.users.checkToken('0123456789abcdef', p.secret, now)).toEqual({ ok: false, why: 'unknown' });

        const short = await ix.users.createToken('sari', new Date(now + 1000).toISOString());
        const s = parseToken(short.token)!;
        expect(await ix.users.checkToken(s.id, s.secret, now + 1000)).toEqual({ ok: false, why: 'expired' });
        expect((await ix.users.tokensOf('sari')).map((t) => t.id).sort()).toEqual([p.id, s.id].sort());
        expect(await ix.users.tokensOf('nobody')).toEqual([]);

        expect((await ix.users.revokeToken(p.id, { actor: 'admin', action: 'token-revoke' }))?.revokedAt).toBeDefined();
        expect(await ix.users.revokeToken('0123456789abcdef')).toBeUndefined();
        expect(await ix.users.checkToken(p.id, p.secret, now)).toEqual({ ok: false, why: 'revoked' });

        await ix.users.addUser({ name: 'temp', roles: ['quality'], teams: [], expiresAt: new Date(now + 86_400_000).toISOString() });
        const tt = parseToken((await ix.users.createToken('temp', undefined)).token)!;
        expect((await ix.users.checkToken(tt.id, tt.secret, now)).ok).toBe(true);
        expect(await ix.users.checkToken(tt.id, tt.secret, now + 86_400_000)).toEqual({ ok: false, why: 'user-expired' });

        const other = await ix.users.createToken('sari', undefined);
        const o = parseToken(other.token)!;
        expect(await ix.users.disableUser('sari', { actor: 'admin', action: 'user-disable' })).toBe(true);
        expect(await ix.users.disableUser('nobody')).toBe(false);
        expect(await ix.users.checkToken(o.id, o.secret, now)).toEqual({ ok: false, why: 'user-disabled' });
        await expect(ix.users.createToken('sari', undefined)).rejects.toThrow();
        await expect(ix.users.createToken('nobody', undefined)).rejects.toThrow();
        expect((await ix.audit.list({ limit: 100 })).map((e) => e.action)).toEqual(['user-add', 'token-create', 'token-revoke', 'user-disable']);
      });

      it('notes last use, and keeps single-sign-on users apart from a local user of the same name', async () => {
        await ix.users.addUser({ name: 'local', roles: ['agent'], teams: [] });
        const t = await ix.users.createToken('local', undefined);
        await ix.users.touch('local', t.record.id, T0 + 5000);
        expect((await ix.users.getUser('local'))?.lastUsedAt).toBe(new Date(T0 + 5000).toISOString());
        expect((await ix.users.getToken(t.record.id))?.lastUsedAt).toBe(new Date(T0 + 5000).toISOString());

        await ix.users.noteExternal({ name: 'sso', roles: ['quality'], teams: ['t2'] }, T0 + 6000);
        await ix.users.noteExternal({ name: 'local', roles: ['admin'], teams: [] }, T0 + 7000);
        const users = Object.fromEntries((await ix.users.listUsers()).map((u) => [u.name, u]));
        expect(users.sso).toMatchObject({ source: 'oidc', roles: ['quality'], teams: ['t2'], lastUsedAt: new Date(T0 + 6000).toISOString() });
        expect(users.local).toMatchObject({ source: 'local', roles: ['agent'], lastUsedAt: new Date(T0 + 7000).toISOString() });
      });
    });

    describe('leases', () => {
      it('gives a lease to one holder at a time; the holder renews and releases it', async () => {
        expect(await ix.claimLease('spool:a', 'n1', 60_000)).toBe(true);
        expect(await ix.claimLease('spool:a', 'n2', 60_000)).toBe(false);
        expect(await ix.claimLease('spool:a', 'n1', 60_000)).toBe(true);
        expect(await ix.claimLease('spool:b', 'n2', 60_000)).toBe(true);
        await ix.releaseLease('spool:a', 'n2'); // not its lease: nothing changes
        expect(await ix.claimLease('spool:a', 'n2', 60_000)).toBe(false);
        await ix.releaseLease('spool:a', 'n1');
        expect(await ix.claimLease('spool:a', 'n2', 60_000)).toBe(true);
        await ix.releaseLease('nothing', 'n1');
        await expect(ix.claimLease('spool:c', 'n1', 0)).rejects.toThrow();
      });

      /** The register's clock decides expiry: `holder` asks for `name` until it has moved past the lease there. */
      async function claimOnceExpired(name: string, holder: string): Promise<boolean> {
        for (let i = 0; i < 200; i++) {
          if (await ix.claimLease(name, holder, 60_000)) return true;
          await new Promise((r) => setTimeout(r, 5));
        }
        return false;
      }

      it('lets another holder take a lease once it has expired', async () => {
        expect(await ix.claimLease('spool:x', 'dead', 1)).toBe(true);
        expect(await claimOnceExpired('spool:x', 'alive')).toBe(true);
        expect(await ix.claimLease('spool:x', 'dead', 60_000)).toBe(false);
      });

      it('renews all of a holder\'s leases in one call and names those it lost', async () => {
        for (const n of ['spool:r1', 'spool:r2', 'spool:r3']) expect(await ix.claimLease(n, 'n1', 60_000)).toBe(true);
        expect(await ix.claimLease('spool:other', 'n2', 60_000)).toBe(true);
        // r2 lost: given up, then taken by n2; r4 never held; 'spool:other' is n2's.
        await ix.releaseLease('spool:r2', 'n1');
        expect(await ix.claimLease('spool:r2', 'n2', 60_000)).toBe(true);
        const renewed = await ix.renewLeases(['spool:r1', 'spool:r2', 'spool:r3', 'spool:r4', 'spool:other'], 'n1', 60_000);
        expect([...renewed].sort()).toEqual(['spool:r1', 'spool:r3']);
        // Nothing of n2's changed hands, and no lease was made for r4.
        expect(await ix.claimLease('spool:r2', 'n1', 60_000)).toBe(false);
        expect(await ix.claimLease('spool:other', 'n1', 60_000)).toBe(false);
        expect(await ix.claimLease('spool:r4', 'n2', 60_000)).toBe(true);
        expect(await ix.renewLeases([], 'n1', 60_000)).toEqual(new Set());
        await expect(ix.renewLeases(['spool:r1', ''], 'n1', 60_000)).rejects.toThrow();
      });

      it('a renewal runs from now, and renews a lapsed lease nobody has taken', async () => {
        expect(await ix.claimLease('spool:short', 'n1', 1)).toBe(true);
        expect(await ix.claimLease('spool:probe', 'n1', 1)).toBe(true);
        // Once another holder can take the probe, the first 1 ms lease has lapsed too.
        expect(await claimOnceExpired('spool:probe', 'n3')).toBe(true);
        expect(await ix.renewLeases(['spool:short'], 'n1', 60_000)).toEqual(new Set(['spool:short']));
        expect(await ix.claimLease('spool:short', 'n2', 60_000)).toBe(false);
      });

      it('of many holders claiming one lease at once, exactly one gets it', async () => {
        const won = await Promise.all(Array.from({ length: 8 }, (_, i) => ix.claimLease('spool:race', `h${i}`, 60_000)));
        expect(won.filter(Boolean)).toHaveLength(1);
      });

      describe('removing expired leases', () => {
        let probes = 0;
        /**
         * `holder` takes `names` for 1 ms, then this waits until the register's clock is
         * strictly past them: a probe lease of 2 ms taken after them must have run out.
         */
        async function lapsed(holder: string, names: readonly string[]): Promise<void> {
          expect((await Promise.all(names.map((n) => ix.claimLease(n, holder, 1)))).every(Boolean)).toBe(true);
          const probe = `probe:${probes++}`;
          expect(await ix.claimLease(probe, 'probe-a', 2)).toBe(true);
          expect(await claimOnceExpired(probe, 'probe-b')).toBe(true);
        }

        it('deletes the leases that ran out more than the grace ago, and keeps live ones', async () => {
          expect(await ix.claimLease('spool:live', 'n2', 60_000)).toBe(true);
          await lapsed('n1', ['spool:gone', 'invite:gone']);
          // Within the grace: kept, so their holder could still renew them.
          expect(await ix.removeExpiredLeases(60_000)).toBe(0);
          expect(await ix.removeExpiredLeases(0)).toBe(2);
          // Gone: their holder can no longer renew them, and nothing is left to delete.
          expect(await ix.renewLeases(['spool:gone', 'invite:gone'], 'n1', 60_000)).toEqual(new Set());
          expect(await ix.removeExpiredLeases(0)).toBe(0);
          // The live lease (and the probe's, taken for a minute) are still held.
          expect(await ix.claimLease('spool:live', 'n3', 60_000)).toBe(false);
          expect(await ix.renewLeases(['spool:live'], 'n2', 60_000)).toEqual(new Set(['spool:live']));
          await expect(ix.removeExpiredLeases(-1)).rejects.toThrow();
          await expect(ix.removeExpiredLeases(0.5)).rejects.toThrow();
        });

        it('keeps a lapsed lease its holder renewed just before the sweep', async () => {
          await lapsed('n1', ['spool:late', 'spool:dropped']);
          expect(await ix.renewLeases(['spool:late'], 'n1', 60_000)).toEqual(new Set(['spool:late']));
          expect(await ix.removeExpiredLeases(0)).toBe(1);
          expect(await ix.claimLease('spool:late', 'n2', 60_000)).toBe(false);
          expect(await ix.renewLeases(['spool:late', 'spool:dropped'], 'n1', 60_000)).toEqual(new Set(['spool:late']));
        });

        it('lets a lease be claimed again once its row is gone', async () => {
          await lapsed('n1', ['invite:again']);
          expect(await ix.removeExpiredLeases(0)).toBe(1);
          expect(await ix.claimLease('invite:again', 'n2', 60_000)).toBe(true);
          expect(await ix.claimLease('invite:again', 'n1', 60_000)).toBe(false);
          await ix.releaseLease('invite:again', 'n2');
          expect(await ix.claimLease('invite:again', 'n1', 60_000)).toBe(true);
        });

        it('sweeps a pile of leases larger than a backend deletes in one go, live ones among them', async () => {
          const names = Array.from({ length: 6000 }, (_, i) => `invite:${String(i).padStart(5, '0')}`);
          const live = names.filter((_, i) => i % 7 === 3);
          const old = names.filter((_, i) => i % 7 !== 3);
          expect((await Promise.all(live.map((n) => ix.claimLease(n, 'n2', 60_000)))).every(Boolean)).toBe(true);
          await lapsed('n1', old);
          expect(await ix.removeExpiredLeases(0)).toBe(old.length);
          expect(await ix.renewLeases(live, 'n2', 60_000)).toEqual(new Set(live));
          expect(await ix.renewLeases(old, 'n1', 60_000)).toEqual(new Set());
        });

        it('sweeps run at once delete each lapsed lease once, and never one claimed meanwhile', async () => {
          const old = Array.from({ length: 30 }, (_, i) => `spool:old-${String(i).padStart(2, '0')}`);
          const live = ['spool:live-a', 'spool:live-b'];
          for (const n of live) expect(await ix.claimLease(n, 'n2', 60_000)).toBe(true);
          await lapsed('n1', old);
          const counts = await Promise.all([ix.removeExpiredLeases(0), ix.removeExpiredLeases(0), ix.removeExpiredLeases(0)]);
          expect(counts.reduce((a, b) => a + b, 0)).toBe(old.length);
          expect(await ix.renewLeases(live, 'n2', 60_000)).toEqual(new Set(live));

          // Lapsed again; half of them are claimed by another holder while two sweeps run.
          await lapsed('n1', old);
          const taken = old.filter((_, i) => i % 2 === 0);
          const [claims, ...swept] = await Promise.all([
            Promise.all(taken.map((n) => ix.claimLease(n, 'n3', 60_000))),
            ix.removeExpiredLeases(0),
            ix.removeExpiredLeases(0),
          ]);
          expect(claims.every(Boolean)).toBe(true);
          const removed = swept.reduce((a, b) => a + b, 0);
          expect(removed).toBeGreaterThanOrEqual(old.length - taken.length);
          expect(removed).toBeLessThanOrEqual(old.length);
          // Every claim made during the sweeps stands; every lease nobody claimed is gone.
          expect(await ix.renewLeases(taken, 'n3', 60_000)).toEqual(new Set(taken));
          expect(await ix.renewLeases(old, 'n1', 60_000)).toEqual(new Set());
          expect(await ix.removeExpiredLeases(0)).toBe(0);
        });
      });
    });

    describe('concurrency', () => {
      it('keeps every write and one unbroken audit chain under concurrent writers', async () => {
        const n = 40;
        await Promise.all(
          Array.from({ length: n }, (_, i) => ix.put(makeEntry(`c${String(i).padStart(2, '0')}`, T0 + i * MIN, { agentId: 'ag' }), { audit: { actor: 'w', action: 'store', recordingId: `c${i}` } })),
        );
        await Promise.all([
          ...Array.from({ length: n }, (_, i) => ix.update(`c${String(i).padStart(2, '0')}`, (e) => ({ ...e, team: 'after' }), { audit: { actor: 'w', action: 'rectify' } })),
          ...Array.from({ length: 10 }, (_, i) => ix.audit.append({ actor: 'r', action: 'list', details: { i } })),
        ]);
        expect(await ix.count()).toBe(n);
        expect((await allPages(ix, { team: 'after' }, 7)).ids).toHaveLength(n);
        const log = await ix.audit.list({ limit: 1000 });
        expect(log.map((e) => e.seq)).toEqual(Array.from({ length: 2 * n + 10 }, (_, i) => i + 1));
        expect(await ix.audit.verify()).toEqual({ ok: true, entries: 2 * n + 10 });
      });
    });
  });
}
