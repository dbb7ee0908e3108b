/**
 * The metrics module reads the purge job's figures at scrape time: the expired lease rows a
 * pass deleted from the register show as tallenne_leases_expired_removed_total.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/api/metrics.js';
import { openIndex } from '../../../src/index/index.js';
import { newRtpCounters } from '../../../src/rtp/counters.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { LEASE_GRACE_MS, Purger } from '../../../src/retention/purge.js';
import { tempDir } from '../../support/cleanup.js';

const T0 = Date.UTC(2026, 2, 1, 8, 0, 0);

function counterValue(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`${name} is not exposed`);
  return Number(m[1]);
}

describe('tallenne_leases_expired_removed_total', () => {
  it('counts the lease rows the purge passes deleted', async () => {
    const dir = tempDir('metrics-leases');
    let now = T0;
    const index = await openIndex(dir, { now: () => now });
    const store = new FsAudioStore(dir);
    const purger = new Purger({ index, store, now: () => now });
    const metrics = new Metrics({
      calls: Object.assign(new EventEmitter(), { activeCalls: 0, availability: () => null }),
      finaliser: Object.assign(new EventEmitter(), { pending: 0 }),
      sip: { counters: { requests: {}, responses: {}, malformed: 0, refused: {}, connectionsClosed: {} }, dialogCount: 0 },
      rtp: newRtpCounters(),
      encoder: { queueLength: 0, busy: 0, liveCalls: [], maxLagMs: 0 },
      index,
      store,
      ports: { inUse: 0, total: 0, batched: false, batchesRead: 0 },
      purger,
      outbox: null,
      build: { version: 'test', node: 'rec-1' },
    });
    expect(counterValue(await metrics.text(), 'tallenne_leases_expired_removed_total')).toBe(0);

    for (const name of ['invite:aa', 'invite:bb', 'spool:cc']) expect(await index.claimLease(name, 'rec-1', 1000)).toBe(true);
    expect(await index.claimLease('spool:live', 'rec-1', 2 * LEASE_GRACE_MS)).toBe(true);
    now = T0 + 1000 + LEASE_GRACE_MS + 1;
    await purger.runOnce();
    expect(counterValue(await metrics.text(), 'tallenne_leases_expired_removed_total')).toBe(3);
    // Counted once: a pass with nothing to delete adds nothing.
    await purger.runOnce();
    expect(counterValue(await metrics.text(), 'tallenne_leases_expired_removed_total')).toBe(3);
    await index.close();
  });
});
