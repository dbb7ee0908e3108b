import { describe, it, expect, vi, afterEach } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { openIndex, type RecordingIndex } from '../../../src/index/index.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { Purger, paceOf, LEASE_GRACE_MS } from '../../../src/retention/purge.js';
import { withRetention } from '../../../src/retention/policy.js';
import { hold, release, erase, rectify } from '../../../src/retention/actions.js';
import { makeEntry, ulidAt } from '../index/entry.js';
import { tempDir } from '../../support/cleanup.js';
import { isStored, storeBytes } from '../../support/store.js';
import { recordingKey } from '../../../src/storage/audio-store.js';
import { INVITE_CLAIM_TTL_MS } from '../../../src/calls/invite-claims.js';
import { SPOOL_LEASE_TTL_MS } from '../../../src/calls/spool-leases.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const retention = parseConfigText(
  `[retention]
audio = "2s"
metadata = "5s"
[[retention.policy]]
name = "statutory"
match = { team = "gov" }
audio = "3s"
metadata = "3s"
erasure = "refused"
erasure_refused_reason = "statutory task"
`,
  'x.toml',
).config.retention;
const privacy = parseConfigText('', 'x.toml').config.privacy;

async function setup() {
  const dir = tempDir('purge');
  const store = new FsAudioStore(dir);
  let now = T0;
  const ix = await openIndex(dir, { now: () => now });
  const purger = new Purger({ index: ix, store, now: () => now });
  let n = 0;
  const record = async (over: Parameters<typeof makeEntry>[2] = {}) => {
    const id = ulidAt(T0 - 60_000, n++);
    const key = recordingKey(id, T0 - 60_000);
    await storeBytes(store, key, Buffer.from('OggS fake audio'));
    // The call ended at T0.
    const e = withRetention(makeEntry(id, T0 - 60_000, { file: key, ...over }), retention);
    await ix.put(e);
    return e;
  };
  return { dir, store, ix, purger, record, setNow: (t: number) => (now = t) };
}

async function actions(ix: RecordingIndex) {
  return (await ix.audit.list({ limit: 1000 })).map((a) => `${a.action}:${a.recordingId ?? ''}`);
}

describe('Purger', () => {
  it('deletes expired audio, then the entry when the metadata period ends, and audits both', async () => {
    const { ix, store, purger, record, setNow } = await setup();
    const e = await record();
    setNow(T0 + 1999);
    expect(await purger.runOnce()).toMatchObject({ audio: [], metadata: [] });
    expect((await isStored(store, e.file))).toBe(true);

    setNow(T0 + 2000);
    const dry = await purger.runOnce({ dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, audio: [e.id], metadata: [] });
    expect((await isStored(store, e.file))).toBe(true);

    const r1 = await purger.runOnce();
    expect(r1).toMatchObject({ audio: [e.id], metadata: [], errors: [] });
    expect(await isStored(store, e.file)).toBe(false);
    const after = (await ix.get(e.id))!;
    expect(after.audioPurgedAt).toBe(new Date(T0 + 2000).toISOString());
    expect(after.fileBytes).toBe(0);

    setNow(T0 + 5000);
    expect(await purger.runOnce()).toMatchObject({ audio: [], metadata: [e.id] });
    expect(await ix.get(e.id)).toBeUndefined();
    expect(await ix.count()).toBe(0);
    expect(purger.purgedTotal).toEqual({ audio: 1, metadata: 1 });

    const log = await ix.audit.list({ limit: 10 });
    expect(log.map((a) => a.action)).toEqual(['purge-audio', 'purge-recording']);
    expect(log[0]).toMatchObject({ actor: 'system:purge', recordingId: e.id, details: { policy: 'default', kind: 'audio', fileDeleted: true } });
    expect(log[1]).toMatchObject({ details: { kind: 'recording', fileDeleted: false } });
    expect(await ix.audit.verify()).toEqual({ ok: true, entries: 2 });
  });

  it('keeps a held recording through the purge and destroys it after release', async () => {
    const { ix, store, purger, record, setNow } = await setup();
    const kept = await record();
    const other = await record();
    await hold(ix, kept.id, { actor: 'dpo', reason: 'complaint 2026/17' }, () => T0);
    setNow(T0 + 10_000);
    const r = await purger.runOnce();
    expect(r.metadata).toEqual([other.id]);
    expect(await isStored(store, kept.file)).toBe(true);
    expect((await ix.get(kept.id))!.hold).toMatchObject({ reason: 'complaint 2026/17', by: 'dpo' });

    await release(ix, kept.id, { actor: 'dpo', reason: 'complaint closed' });
    expect((await ix.get(kept.id))!.hold).toBeUndefined();
    expect((await purger.runOnce()).metadata).toEqual([kept.id]);
    expect(await isStored(store, kept.file)).toBe(false);
    expect(await actions(ix)).toEqual([`hold:${kept.id}`, `purge-recording:${other.id}`, `release:${kept.id}`, `purge-recording:${kept.id}`]);
  });

  it('lets a hold with an end date lapse on its own', async () => {
    const { ix, purger, record, setNow } = await setup();
    const e = await record();
    await hold(ix, e.id, { actor: 'dpo', reason: 'police request', until: new Date(T0 + 60_000).toISOString() });
    setNow(T0 + 59_999);
    expect(await purger.runOnce()).toMatchObject({ audio: [], metadata: [] });
    setNow(T0 + 60_000);
    expect((await purger.runOnce()).metadata).toEqual([e.id]);
  });

  it('erases on request where the policy allows it, and refuses with the reason where it does not', async () => {
    const { ix, store, record } = await setup();
    const ok = await record();
    const gov = await record({ team: 'gov' });
    expect(gov.retention!.policy).toBe('statutory');
    expect(await erase(ix, store, ok.id, { actor: 'dpo', reason: 'subject request 5' }, retention)).toEqual({ fileDeleted: true });
    expect(await ix.get(ok.id)).toBeUndefined();
    expect(await isStored(store, ok.file)).toBe(false);
    await expect(erase(ix, store, gov.id, { actor: 'dpo', reason: 'subject request 6' }, retention)).rejects.toMatchObject({
      code: 'TALLENNE_ERASURE_REFUSED',
      message: expect.stringMatching(/statutory task/),
    });
    expect((await isStored(store, gov.file))).toBe(true);
    const held = await record();
    await hold(ix, held.id, { actor: 'dpo', reason: 'authority' });
    await expect(erase(ix, store, held.id, { actor: 'dpo', reason: 'r' }, retention)).rejects.toMatchObject({ code: 'TALLENNE_ERASURE_REFUSED' });
    await expect(erase(ix, store, 'nope', { actor: 'dpo', reason: 'r' }, retention)).rejects.toMatchObject({ code: 'TALLENNE_NOT_FOUND' });
    expect(await actions(ix)).toEqual([`erase:${ok.id}`, `erase-refused:${gov.id}`, `hold:${held.id}`, `erase-refused:${held.id}`]);
  });

  it('rectifies metadata, re-decides the policy and audits field names only', async () => {
    const { ix, record } = await setup();
    const e = await record();
    const agents = parseConfigText('[[agents]]\nid = "aino"\nname = "Aino Agentti"\nteam = "gov"\n', 'x.toml').config.agents;
    const r = await rectify(ix, e.id, { agentId: 'aino' }, { actor: 'dpo', reason: 'wrong agent' }, { retention, privacy, agents });
    expect(r).toMatchObject({ agentId: 'aino', agentName: 'Aino Agentti', team: 'gov', retention: { policy: 'statutory' } });
    expect((await ix.list({ agentId: 'aino' }, { limit: 5 })).items.map((x) => x.id)).toEqual([e.id]);
    await expect(rectify(ix, e.id, { file: 'x' }, { actor: 'dpo', reason: 'r' }, { retention, privacy })).rejects.toThrow(/cannot be rectified/);
    const a = (await ix.audit.list({ limit: 5 })).at(-1)!;
    expect(a).toMatchObject({ action: 'rectify', details: { fields: 'agentId,agentName,team', policy: 'statutory' } });
    expect(JSON.stringify(a)).not.toContain('Aino');
  });

  it('finds orphan files and entries without files; removes and repairs only when asked', async () => {
    const { ix, store, purger, record, setNow } = await setup();
    const good = await record();
    const lost = await record();
    await store.remove(lost.file);
    const oldOrphanId = ulidAt(T0 - 7_200_000, 99);
    const oldKey = recordingKey(oldOrphanId, T0);
    await storeBytes(store, oldKey, Buffer.from('x'));
    const newOrphanId = ulidAt(T0 - 1000, 98);
    const newKey = recordingKey(newOrphanId, T0);
    await storeBytes(store, newKey, Buffer.from('x'));
    setNow(T0);

    const report = await purger.sweepOrphans();
    expect(report).toEqual({ orphanFiles: [oldKey], recentOrphanFiles: [newKey], missingFiles: [lost.id], removedFiles: 0, repairedEntries: 0 });
    expect((await isStored(store, oldKey))).toBe(true);

    const fixed = await purger.sweepOrphans({ remove: true, repair: true, actor: 'ops' });
    expect(fixed).toMatchObject({ removedFiles: 1, repairedEntries: 1 });
    expect(await isStored(store, oldKey)).toBe(false);
    expect(await isStored(store, newKey)).toBe(true);
    expect(await isStored(store, good.file)).toBe(true);
    expect((await ix.get(lost.id))!.audioPurgedAt).toBeDefined();
    expect(await purger.sweepOrphans()).toMatchObject({ orphanFiles: [], missingFiles: [] });
    expect(await actions(ix)).toEqual(['orphan-file-removed:', `audio-missing:${lost.id}`]);
  });
});

describe('the purge pass and the register\'s leases', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** An INVITE claim and a spool lease a recorder took at T0 and never gave back (it was killed). */
  async function abandoned(ix: RecordingIndex): Promise<void> {
    expect(await ix.claimLease('invite:0123abcd', 'rec-1:dialog', INVITE_CLAIM_TTL_MS)).toBe(true);
    expect(await ix.claimLease('spool:01J0000000000000000000000A', 'rec-1', SPOOL_LEASE_TTL_MS)).toBe(true);
  }

  it('deletes lease rows once they ran out more than the grace ago, counts them, and leaves live ones', async () => {
    const { ix, purger, setNow } = await setup();
    await abandoned(ix);
    setNow(T0 + SPOOL_LEASE_TTL_MS + LEASE_GRACE_MS);
    // Run out, but only just the grace ago: a stalled holder may still renew it.
    expect(await purger.runOnce()).toMatchObject({ leasesRemoved: 0 });
    setNow(T0 + SPOOL_LEASE_TTL_MS + LEASE_GRACE_MS + 1);
    expect(await purger.runOnce({ dryRun: true })).toMatchObject({ leasesRemoved: 0 });
    expect(await purger.runOnce()).toMatchObject({ leasesRemoved: 1, errors: [] });
    expect(await ix.renewLeases(['spool:01J0000000000000000000000A'], 'rec-1', SPOOL_LEASE_TTL_MS)).toEqual(new Set());
    // The claim still runs (5 minutes) and stays; a live spool lease taken now stays too.
    expect(await ix.claimLease('spool:live', 'rec-2', SPOOL_LEASE_TTL_MS)).toBe(true);
    setNow(T0 + INVITE_CLAIM_TTL_MS + LEASE_GRACE_MS + 1);
    expect(await ix.renewLeases(['spool:live'], 'rec-2', SPOOL_LEASE_TTL_MS)).toEqual(new Set(['spool:live']));
    expect(await purger.runOnce()).toMatchObject({ leasesRemoved: 1 });
    expect(await ix.claimLease('spool:live', 'rec-3', SPOOL_LEASE_TTL_MS)).toBe(false);
    expect(purger.leasesRemoved).toBe(2);
    expect(purger.runs).toBe(3);
    await ix.close();
  });

  it('the scheduled job sweeps them: the daemon\'s purge timer is all it takes', async () => {
    const { ix, purger, setNow } = await setup();
    await abandoned(ix);
    setNow(T0 + INVITE_CLAIM_TTL_MS + LEASE_GRACE_MS + 1);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    purger.start(60_000);
    vi.advanceTimersByTime(60_000);
    // stop() waits for the run the timer started.
    await purger.stop();
    expect(purger.runs).toBe(1);
    expect(purger.leasesRemoved).toBe(2);
    await ix.close();
  });

  it('a failed sweep leaves the rest of the pass done and the rows for the next pass; a node that finds the lock taken sweeps nothing', async () => {
    const { ix, store, record, setNow } = await setup();
    const e = await record();
    await abandoned(ix);
    const at = T0 + INVITE_CLAIM_TTL_MS + LEASE_GRACE_MS + 1;
    setNow(at);
    const busy = new Purger({ index: ix, store, now: () => at, lock: async () => ({ locked: false }) });
    expect(await busy.runOnce()).toMatchObject({ busyElsewhere: true, leasesRemoved: 0 });
    const away = Object.assign(Object.create(ix) as RecordingIndex, {
      removeExpiredLeases: async () => {
        throw new Error('register unreachable');
      },
    });
    const failing = new Purger({ index: away, store, now: () => at });
    expect(await failing.runOnce()).toMatchObject({ metadata: [e.id], leasesRemoved: 0, errors: [] });
    expect(failing.runs).toBe(1);
    expect(await new Purger({ index: ix, store, now: () => at }).runOnce()).toMatchObject({ leasesRemoved: 2 });
    await ix.close();
  });
});

describe('the purge pace', () => {
  it('keeps an interval within what a Node timer holds', () => {
    expect(paceOf(10)).toBe(1000);
    expect(paceOf(3_600_000)).toBe(3_600_000);
    // 30 days would overflow a timer, which then fires every millisecond.
    expect(paceOf(30 * 86_400_000)).toBe(2 ** 31 - 1);
  });
});
