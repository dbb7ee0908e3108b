/**
 * Two nodes purging one PostgreSQL register at once: the purge lock lets one pass run at a
 * time, each expired recording is destroyed (and audited) exactly once, and the one audit
 * chain verifies with entries from both nodes. A node killed mid-pass leaves its intent to
 * the next pass, which completes it once.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { isStored, storeBytes } from '../../support/store.js';
import { recordingKey } from '../../../src/storage/audio-store.js';
import { Purger } from '../../../src/retention/purge.js';
import { withRetention } from '../../../src/retention/policy.js';
import { migratePostgres, openPostgresIndex } from '../../../src/index/postgres/open.js';
import type { PostgresRecordingIndex } from '../../../src/index/postgres/recordings.js';
import type { AuditEntry } from '../../../src/index/index.js';
import { makeEntry, ulidAt } from '../index/entry.js';
import { tempDir, trackChild } from '../../support/cleanup.js';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../../support/postgres.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);
const LATER = T0 + 10_000;
const retention = parseConfigText('[retention]\naudio = "2s"\nmetadata = "5s"\n', 'x.toml').config.retention;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./postgres-purge-child.ts', import.meta.url));

let server: PostgresHandle;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
});

async function twoNodes(n: number) {
  const url = await server.createDatabase();
  await migratePostgres(url);
  const dir = tempDir('pg-purge');
  const store = new FsAudioStore(dir);
  const a = await openPostgresIndex({ url, poolSize: 4, node: 'a', now: () => LATER });
  const b = await openPostgresIndex({ url, poolSize: 4, node: 'b', now: () => LATER });
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = ulidAt(T0 - 60_000, i);
    const key = recordingKey(id, T0);
    await storeBytes(store, key, Buffer.from('OggS'));
    keys.push(key);
    // Half the recordings are stored by each node, audited as they are.
    await (i % 2 === 0 ? a : b).put(withRetention(makeEntry(id, T0 - 60_000, { file: key }), retention), { audit: { actor: 'test', action: 'stored', recordingId: id } });
  }
  return { url, dir, store, a, b, keys };
}

async function allAudit(ix: PostgresRecordingIndex): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (;;) {
    const page = await ix.audit.list({ after: out.length, limit: 1000 });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

function destructionsById(entries: AuditEntry[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of entries) if (e.action === 'purge-recording' || e.action === 'purge-audio') m.set(e.recordingId!, (m.get(e.recordingId!) ?? 0) + 1);
  return m;
}

describe.skipIf(!postgresInstalled())('retention purge on a shared PostgreSQL register', () => {
  it('two nodes purging at once destroy each expired recording exactly once', async () => {
    const { store, a, b, keys } = await twoNodes(120);
    const pa = new Purger({ index: a, store, now: () => LATER, lock: (fn) => a.purgeAlone(fn) });
    const pb = new Purger({ index: b, store, now: () => LATER, lock: (fn) => b.purgeAlone(fn) });
    // While node a holds the lock, node b's pass does nothing at all.
    let release!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const held = a.purgeAlone(() => {
      entered();
      return new Promise<void>((r) => (release = r));
    });
    await inside;
    const meanwhile = await pb.runOnce();
    expect(meanwhile).toMatchObject({ busyElsewhere: true, metadata: [], audio: [], resumed: [] });
    release();
    expect(await held).toEqual({ locked: true, value: undefined });
    expect(await a.count()).toBe(keys.length);
    for (let round = 0; round < 10 && (await a.count()) > 0; round++) {
      const reports = await Promise.all(round % 2 === 0 ? [pa.runOnce(), pb.runOnce()] : [pb.runOnce(), pa.runOnce()]);
      for (const r of reports) expect(r.errors).toEqual([]);
    }
    expect(await a.count()).toBe(0);
    expect(await b.intents(10)).toEqual([]);
    for (const k of keys) expect(await isStored(store, k)).toBe(false);
    const entries = await allAudit(a);
    const destroyed = destructionsById(entries);
    expect(destroyed.size).toBe(keys.length);
    expect([...destroyed.values()].every((n) => n === 1)).toBe(true);
    expect(new Set(entries.map((e) => e.node))).toEqual(new Set(['a', 'b']));
    expect(await b.audit.verify()).toEqual({ ok: true, entries: entries.length });
    await a.close();
    await b.close();
  }, 120_000);

  it('a node killed mid-pass leaves its intent to the next pass, completed once', async () => {
    const { url, dir, store, a, b, keys } = await twoNodes(6);
    const child = trackChild(spawn(process.execPath, [join(ROOT, 'node_modules/vite-node/vite-node.mjs'), CHILD, url, dir, String(LATER)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const signal = await new Promise((r) => child.once('close', (_c, s) => r(s)));
    expect(signal, stderr).toBe('SIGKILL');
    const pending = await a.intents(10);
    expect(pending).toHaveLength(1);

    // The dead node's connection is gone, and with it the lock: node b's pass runs.
    const pb = new Purger({ index: b, store, now: () => LATER, lock: (fn) => b.purgeAlone(fn) });
    let report = await pb.runOnce();
    for (let tries = 0; report.busyElsewhere && tries < 50; tries++) {
      // The server may take a moment to notice the killed connection: wait for its session to end.
      await b.audit.list({ limit: 1 });
      report = await pb.runOnce();
    }
    expect(report.busyElsewhere).toBeUndefined();
    expect(report.resumed).toEqual([pending[0]!.id]);
    expect(report.errors).toEqual([]);
    expect(await a.count()).toBe(0);
    for (const k of keys) expect(await isStored(store, k)).toBe(false);
    const entries = await allAudit(a);
    expect([...destructionsById(entries).values()]).toEqual(keys.map(() => 1));
    expect((await a.audit.verify()).ok).toBe(true);
    await a.close();
    await b.close();
  }, 120_000);
});
