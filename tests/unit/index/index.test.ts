import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { openIndex, SCHEMA_VERSION, type RecordingIndex } from '../../../src/index/index.js';
import { NumberHasher, maskNumber, normalizeE164 } from '../../../src/privacy/numbers.js';
import type { RecordingEntry } from '../../../src/types.js';
import { makeEntry } from './entry.js';
import { tempDir } from '../../support/cleanup.js';

const T0 = Date.UTC(2026, 0, 1);
const N = 100_000;
const MIN = 60_000;

function idOf(i: number): string {
  return `r${String(i).padStart(6, '0')}`;
}

describe('RecordingIndex over 100,000 entries', () => {
  let dir: string;
  let ix: RecordingIndex;
  let hashes: string[];

  beforeAll(async () => {
    dir = tempDir('ix');
    ix = await openIndex(dir);
    const hasher = NumberHasher.open(join(dir, 'key'));
    hashes = Array.from({ length: 50 }, (_, k) => hasher.hash(`+35840${String(1000000 + k)}`));
    for (let base = 0; base < N; base += 5000) {
      const batch: Promise<void>[] = [];
      for (let i = base; i < base + 5000; i++) {
        batch.push(
          ix.put(
            makeEntry(idOf(i), T0 + i * MIN, {
              agentId: `agent${i % 100}`,
              team: `team${i % 7}`,
              serviceNumber: `+3582000${i % 20}`,
              customerNumberHash: hashes[i % 50],
              status: i % 1000 === 0 ? 'truncated' : 'complete',
            }),
          ),
        );
      }
      await Promise.all(batch);
    }
  }, 120_000);

  afterAll(async () => {
    await ix.close();
  });

  it('counts without scanning and stores the schema version', async () => {
    expect(await ix.count()).toBe(N);
    expect(ix.schemaVersion).toBe(SCHEMA_VERSION);
  });

  it('pages a time range newest first, touching only the page', async () => {
    const from = T0 + 5000 * MIN;
    const to = T0 + 5100 * MIN;
    const p1 = await ix.list({ from, to }, { limit: 30 });
    expect(p1.items.map((e) => e.id)).toEqual(Array.from({ length: 30 }, (_, k) => idOf(5099 - k)));
    expect(p1.visited).toBe(30);
    expect(p1.nextCursor).toBeDefined();
    const all: string[] = [...p1.items.map((e) => e.id)];
    let cursor = p1.nextCursor;
    while (cursor) {
      const p = await ix.list({ from, to }, { cursor, limit: 30 });
      expect(p.visited).toBeLessThanOrEqual(30);
      all.push(...p.items.map((e) => e.id));
      cursor = p.nextCursor;
    }
    expect(all).toEqual(Array.from({ length: 100 }, (_, k) => idOf(5099 - k)));
  });

  it('finds an agent\'s recordings through the agent index', async () => {
    const p = await ix.list({ agentId: 'agent42' }, { limit: 10 });
    expect(p.items.map((e) => e.id)).toEqual(Array.from({ length: 10 }, (_, k) => idOf(N - 100 + 42 - k * 100)));
    expect(p.visited).toBe(10);
    const ranged = await ix.list({ agentId: 'agent42', from: T0 + 1000 * MIN, to: T0 + 2000 * MIN }, { limit: 100 });
    expect(ranged.items).toHaveLength(10);
    expect(ranged.items.every((e) => e.agentId === 'agent42')).toBe(true);
    expect(ranged.visited).toBe(10);
  });

  it('finds by service number and by number hash', async () => {
    const s = await ix.list({ serviceNumber: '+35820007' }, { limit: 25 });
    expect(s.items).toHaveLength(25);
    expect(s.items.every((e) => e.serviceNumber === '+35820007')).toBe(true);
    expect(s.visited).toBe(25);
    const h = await ix.list({ numberHash: hashes[13]! }, { limit: 5000 });
    expect(h.items).toHaveLength(N / 50);
    expect(h.items.every((e) => e.customerNumberHash === hashes[13])).toBe(true);
    expect(h.visited).toBe(N / 50);
    expect(h.nextCursor).toBeUndefined();
  });

  it('combines lookups by checking the rest per entry of the most selective index', async () => {
    const p = await ix.list({ numberHash: hashes[0]!, agentId: 'agent0' }, { limit: 1000 });
    // i % 50 == 0 and i % 100 == 0
    expect(p.items).toHaveLength(N / 100);
    expect(p.visited).toBe(N / 50);
    const st = await ix.list({ status: 'truncated' }, { limit: 1000 });
    expect(st.items).toHaveLength(N / 1000);
    expect(st.visited).toBe(N / 1000);
  });
});

describe('RecordingIndex updates, expiry and privacy', () => {
  it('never stores the clear number: the raw LMDB data file holds only the masked form and the hash', async () => {
    const dir = tempDir('ix');
    const ix = await openIndex(dir);
    const hasher = NumberHasher.open(join(dir, 'key'));
    const e164 = normalizeE164('040 987 6543', '358')!;
    await ix.put(makeEntry('p1', T0, { customerNumber: maskNumber(e164, 3), customerNumberHash: hasher.hash(e164) }));
    await ix.audit.append({ actor: 'dpo', action: 'find-by-number', details: { matches: 1 } });
    await ix.close();
    const raw = readFileSync(join(dir, 'index', 'data.mdb'));
    expect(raw.includes(Buffer.from('+358401234'))).toBe(false); // sanity: other data absent
    expect(raw.includes(Buffer.from('+358409876***'))).toBe(true); // the masked form is there: the scan works
    for (const form of ['+358409876543', '358409876543', '0409876543', '409876543', '9876543']) {
      expect(raw.includes(Buffer.from(form)), form).toBe(false);
    }
  });

  it('migrates a store written before versioning by rebuilding its secondary indexes', async () => {
    const dir = tempDir('ix');
    const env = open({ path: join(dir, 'index') });
    const recs = env.openDB<RecordingEntry, string>('recordings', {});
    await recs.put('old1', makeEntry('old1', T0, { agentId: 'ag' }));
    await recs.put('old2', makeEntry('old2', T0 + 1, { agentId: 'ag' }));
    await env.close();
    const ix = await openIndex(dir);
    expect(ix.schemaVersion).toBe(SCHEMA_VERSION);
    expect((await ix.list({ agentId: 'ag' }, { limit: 10 })).items.map((e) => e.id)).toEqual(['old2', 'old1']);
    await ix.close();
  });

  it('migrates a version 1 store to the group index, and finds the sessions of one SIPREC group', async () => {
    const dir = tempDir('ix');
    const env = open({ path: join(dir, 'index') });
    const recs = env.openDB<RecordingEntry, string>('recordings', {});
    await recs.put('g1', makeEntry('g1', T0, { groupId: 'grp-A' }));
    await recs.put('g2', makeEntry('g2', T0 + 5, { groupId: 'grp-A' }));
    await recs.put('g3', makeEntry('g3', T0 + 9, { groupId: 'grp-B' }));
    await env.openDB('meta', {}).put('schemaVersion', 1);
    await env.close();
    const ix = await openIndex(dir);
    expect(ix.schemaVersion).toBe(SCHEMA_VERSION);
    const page = await ix.list({ groupId: 'grp-A' }, { limit: 10 });
    expect(page.items.map((e) => e.id)).toEqual(['g2', 'g1']);
    expect(page.visited).toBeLessThanOrEqual(3);
    await ix.close();
  });

  it('refuses a store from a newer schema', async () => {
    const dir = tempDir('ix');
    const env = open({ path: join(dir, 'index') });
    await env.openDB('meta', {}).put('schemaVersion', SCHEMA_VERSION + 1);
    await env.close();
    await expect(openIndex(dir)).rejects.toThrow(/newer tallenne/);
  });
});
