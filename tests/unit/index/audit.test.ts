import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { open } from 'lmdb';
import { openIndex } from '../../../src/index/index.js';
import type { AuditEntry } from '../../../src/index/audit.js';
import { tempDir } from '../../support/cleanup.js';

async function logWith(n: number): Promise<string> {
  const dir = tempDir('audit');
  const ix = await openIndex(dir);
  for (let i = 1; i <= n; i++) {
    await ix.audit.append({ actor: `user${i}`, action: 'show', recordingId: `rec${i}`, reason: 'qa', details: { n: i, ok: true } });
  }
  await ix.close();
  return dir;
}

async function tamper(dir: string, fn: (db: ReturnType<ReturnType<typeof open>['openDB']>, meta: ReturnType<ReturnType<typeof open>['openDB']>) => Promise<unknown>): Promise<void> {
  const env = open({ path: join(dir, 'index') });
  await fn(env.openDB('audit', {}), env.openDB('meta', {}));
  await env.close();
}

async function verdict(dir: string) {
  const ix = await openIndex(dir);
  const v = await ix.audit.verify();
  await ix.close();
  return v;
}

describe('audit log', () => {
  it('pinpoints an edited entry', async () => {
    const dir = await logWith(6);
    await tamper(dir, async (db) => {
      const e = db.get(4) as AuditEntry;
      await db.put(4, { ...e, actor: 'someone-else' });
    });
    expect(await verdict(dir)).toEqual({ ok: false, at: 4, problem: expect.stringMatching(/entry 4 was altered/) });
  });

  it('pinpoints an entry whose hash was recomputed to hide an edit', async () => {
    const dir = await logWith(6);
    const { auditHash } = await import('../../../src/index/audit.js');
    await tamper(dir, async (db) => {
      const { hash: _h, ...rest } = db.get(2) as AuditEntry;
      const edited = { ...rest, reason: 'nothing to see' };
      await db.put(2, { ...edited, hash: auditHash(edited) });
    });
    expect(await verdict(dir)).toMatchObject({ ok: false, at: 3, problem: expect.stringMatching(/does not chain/) });
  });

  it('pinpoints a deleted entry in the middle and at the end', async () => {
    const mid = await logWith(6);
    await tamper(mid, (db) => db.remove(3));
    expect(await verdict(mid)).toMatchObject({ ok: false, at: 3, problem: expect.stringMatching(/3\.\.3 are missing/) });
    const tail = await logWith(6);
    await tamper(tail, (db) => db.remove(6));
    expect(await verdict(tail)).toMatchObject({ ok: false, at: 6, problem: expect.stringMatching(/missing from the end/) });
  });

  it('verifies a chain whose older entries name no node, and catches a node changed afterwards', async () => {
    const dir = await logWith(3);
    for (const nodeId of ['rec-1', 'rec-2']) {
      const ix = await openIndex(dir, { nodeId });
      await ix.audit.append({ actor: 'ops', action: 'show', recordingId: nodeId });
      await ix.close();
    }
    const ix = await openIndex(dir);
    expect((await ix.audit.list({ limit: 10 })).map((e) => e.node)).toEqual([undefined, undefined, undefined, 'rec-1', 'rec-2']);
    expect(await ix.audit.verify()).toEqual({ ok: true, entries: 5 });
    await ix.close();
    await tamper(dir, async (db) => {
      const e = db.get(4) as AuditEntry;
      await db.put(4, { ...e, node: 'rec-2' });
    });
    expect(await verdict(dir)).toMatchObject({ ok: false, at: 4, problem: expect.stringMatching(/entry 4 was altered/) });
  });

  it('keeps the chain intact under concurrent appends (one writer transaction each)', async () => {
    const dir = await logWith(2);
    const a = await openIndex(dir);
    await Promise.all([a.audit.append({ actor: 'x', action: 'a' }), a.audit.append({ actor: 'y', action: 'b' })]);
    expect(await a.audit.verify()).toEqual({ ok: true, entries: 4 });
    await a.close();
  });
});
