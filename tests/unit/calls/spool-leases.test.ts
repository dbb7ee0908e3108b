/**
 * Spool leases with the real finaliser over a real LMDB register: two recoverers racing on
 * one spool folder store each spool once, and a recoverer leaves alone the spools of a live
 * process that keeps renewing its leases. The encoder is a stand-in that makes an entry
 * from the job (the real encoder is run by tests/integration/recover.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Finaliser } from '../../../src/calls/finaliser.js';
import { SpoolLeases } from '../../../src/calls/spool-leases.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import type { EncodeJob, EncodeResult } from '../../../src/encoder/encode-spool.js';
import { openIndex, type RecordingIndex } from '../../../src/index/index.js';
import { createLogger } from '../../../src/log.js';
import { tempDir } from '../../support/cleanup.js';

const log = createLogger('silent');

function result(job: EncodeJob): EncodeResult {
  const answeredAt = Date.UTC(2026, 0, 1);
  return {
    meta: { id: job.id, callId: `c-${job.id}@x`, siprec: false, answeredAt, direction: 'inbound', participants: [], legs: [] },
    staged: { key: `recordings/2026/01/01/${job.id}.opus`, bytes: 100, storedBytes: 100, sha256: 'ab'.repeat(32), encrypted: false, area: job.staging }, answeredAt, endedAt: answeredAt + 1000, durationMs: 1000, status: 'truncated', endReason: 'recovered',
    legs: [], pauses: [], dtmf: [], sampleRate: 8000, channels: 2, audioMs: 1000, encodeCpuMs: 1, framesEncoded: 50, framesSkipped: 0, spoolRecordsRejected: 0,
  };
}

describe('spool leases', () => {
  let dir: string;
  let spoolDir: string;
  let config: Config;
  let ix: RecordingIndex;
  /** Every encode asked for, by which process. */
  let encodes: Array<{ id: string; by: string }>;
  const closers: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    dir = tempDir('leases');
    spoolDir = join(dir, 'spool');
    config = parseConfigText(`[storage]\ndir = "${dir}"\n`, join(dir, 'tallenne.toml')).config;
    ix = await openIndex(dir, { nodeId: 'test' });
    encodes = [];
  });

  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await ix.close();
  });

  function finaliser(holder: string, ttlMs: number, register: Pick<RecordingIndex, 'claimLease' | 'renewLeases' | 'releaseLease'> = ix): { f: Finaliser; leases: SpoolLeases } {
    const leases = new SpoolLeases(register, holder, log, ttlMs);
    const encode = async (job: EncodeJob): Promise<EncodeResult> => {
      encodes.push({ id: job.id, by: holder });
      // Yield, so the two processes' steps interleave.
      await tick();
      return result(job);
    };
    const store = { staging: { kind: 'local' as const, dir }, publish: async (st: NonNullable<EncodeResult['staged']>) => ({ key: st.key, bytes: st.bytes, storedBytes: st.storedBytes, sha256: st.sha256 }) };
    const f = new Finaliser({ config: () => config, log, spoolDir, index: ix, store, leases, encoder: { follow: () => undefined, finish: encode, encode } });
    f.stopRetrying();
    closers.push(async () => {
      f.close();
      await leases.close();
    });
    return { f, leases };
  }

  function spools(ids: string[]): void {
    for (const id of ids) writeFileSync(join(spoolDir, `${id}.spool`), 'spool');
  }

  it('two recoverers racing on one spool folder store every spool exactly once', async () => {
    mkdirSync(spoolDir);
    const ids = Array.from({ length: 30 }, (_, i) => `orphan${String(i).padStart(2, '0')}`);
    spools(ids);
    const a = finaliser('node-b:recover:1', 30_000);
    const b = finaliser('node-c:recover:2', 30_000);
    const [ra, rb] = await Promise.all([a.f.recoverSpools(), b.f.recoverSpools()]);
    await Promise.all([a.f.settled(), b.f.settled()]);

    expect(ra.started + rb.started).toBe(ids.length);
    expect(encodes.map((e) => e.id).sort()).toEqual(ids);
    expect(readdirSync(spoolDir)).toEqual([]);
    const page = await ix.list({}, { limit: 1000 });
    expect(page.items.map((e) => e.id).sort()).toEqual(ids);
    // Every lease was given back: a third process could take any of these names now.
    for (const id of ids) expect(await ix.claimLease(`spool:${id}`, 'third', 1000)).toBe(true);
  });

  it('a recoverer leaves the spools of a live process that renews its leases, and takes them once it is gone', async () => {
    mkdirSync(spoolDir);
    spools(['live1', 'live2']);
    // The live process: its leases last 150 ms and are renewed every 50 ms. Renewals are
    // counted, so the test waits until several lease lifetimes have passed.
    let renewals = 0;
    let enough: () => void = () => undefined;
    const renewedEnough = new Promise<void>((r) => (enough = r));
    const counting: Pick<RecordingIndex, 'claimLease' | 'renewLeases' | 'releaseLease'> = {
      claimLease: (name, holder, ttl) => ix.claimLease(name, holder, ttl),
      renewLeases: async (names, holder, ttl) => {
        const renewed = await ix.renewLeases(names, holder, ttl);
        if (++renewals >= 7) enough();
        return renewed;
      },
      releaseLease: (name, holder) => ix.releaseLease(name, holder),
    };
    const live = finaliser('node-a', 150, counting);
    live.f.follow({ id: 'live1', spoolPath: join(spoolDir, 'live1.spool') });
    live.f.follow({ id: 'live2', spoolPath: join(spoolDir, 'live2.spool') });
    await renewedEnough;

    const rec = finaliser('node-b:recover:1', 30_000);
    expect(await rec.f.recoverSpools()).toEqual({ started: 0, leasedElsewhere: 2, unanswered: 0 });
    await rec.f.settled();
    expect(encodes).toEqual([]);
    expect(existsSync(join(spoolDir, 'live1.spool')) && existsSync(join(spoolDir, 'live2.spool'))).toBe(true);
    expect(await ix.count()).toBe(0);

    // The live process goes away (its leases are given back): now the recoverer takes both.
    await live.leases.close();
    expect(await rec.f.recoverSpools()).toEqual({ started: 2, leasedElsewhere: 0, unanswered: 0 });
    await rec.f.settled();
    expect(encodes.map((e) => e.id).sort()).toEqual(['live1', 'live2']);
    expect(await ix.count()).toBe(2);
  });

  it('renews all its leases in one write per renewal, and reports by id each lease another process took', async () => {
    const lines: Array<{ msg: string; recording?: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
        done();
      },
    });
    const writes: { claims: number; renewals: Array<readonly string[]> } = { claims: 0, renewals: [] };
    let wanted = 0;
    let reached: () => void = () => undefined;
    const renewalsReach = (n: number): Promise<void> => {
      wanted = n;
      return new Promise((r) => (reached = r));
    };
    const register: Pick<RecordingIndex, 'claimLease' | 'renewLeases' | 'releaseLease'> = {
      claimLease: (name, holder, ttl) => {
        writes.claims++;
        return ix.claimLease(name, holder, ttl);
      },
      renewLeases: async (names, holder, ttl) => {
        const renewed = await ix.renewLeases(names, holder, ttl);
        writes.renewals.push([...names]);
        if (writes.renewals.length >= wanted) reached();
        return renewed;
      },
      releaseLease: (name, holder) => ix.releaseLease(name, holder),
    };
    const leases = new SpoolLeases(register, 'node-a', createLogger('info', sink), 900);
    closers.push(() => leases.close());
    const ids = Array.from({ length: 50 }, (_, i) => `call${String(i).padStart(2, '0')}`);
    for (const id of ids) expect(await leases.claim(id)).toBe(true);
    await renewalsReach(3);
    // 50 leases: one claim each, then one write per renewal naming all 50.
    expect(writes.claims).toBe(50);
    for (const names of writes.renewals.slice(0, 3)) expect([...names].sort()).toEqual(ids.map((id) => `spool:${id}`));

    // Two leases are lost to another process (as when this one stalled past their expiry).
    for (const id of ['call07', 'call31']) {
      await ix.releaseLease(`spool:${id}`, 'node-a');
      expect(await ix.claimLease(`spool:${id}`, 'node-b:recover:1', 60_000)).toBe(true);
    }
    const lost = (): Array<string | undefined> => lines.filter((l) => l.msg.startsWith('another process took the lease')).map((l) => l.recording);
    while (lost().length < 2) await renewalsReach(writes.renewals.length + 1);
    await renewalsReach(writes.renewals.length + 1);
    expect(lost().sort()).toEqual(['call07', 'call31']);
    // The lost ones are no longer renewed, the others still are, and the thief keeps its leases.
    expect(writes.renewals.at(-1)!.length).toBe(48);
    expect(await ix.claimLease('spool:call07', 'node-a', 60_000)).toBe(false);
    expect(await ix.claimLease('spool:call00', 'node-b:recover:1', 60_000)).toBe(false);
  });
});
