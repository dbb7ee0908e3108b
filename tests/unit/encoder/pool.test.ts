import { describe, it, expect, beforeAll, afterEach, vi } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EncoderPool, encoderWorkerCount } from '../../../src/encoder/pool.js';
import type { EncodeJob } from '../../../src/encoder/encode-spool.js';
import { writeSpoolFixture } from '../../support/spool-fixture.js';
import { tempDir } from '../../support/cleanup.js';
import { stagingIn } from '../../support/store.js';

// The pool runs the compiled worker (a thread cannot load TypeScript): `npm test` builds
// first; alone, run `npx tsc -p .` before these tests.
const DIST = join(import.meta.dirname, '../../../dist/encoder');

let dir: string;
let spool: string;
const pools: EncoderPool[] = [];

beforeAll(async () => {
  if (!existsSync(join(DIST, 'worker.js'))) throw new Error('dist/encoder/worker.js is missing: run `npx tsc -p .` first');
  dir = tempDir('pool');
  spool = join(dir, 'a.spool');
  await writeSpoolFixture({
    path: spool,
    durationMs: 2000,
    legs: [
      { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
      { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
    ],
  });
});

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
});

function pool(opts: ConstructorParameters<typeof EncoderPool>[0]): EncoderPool {
  const p = new EncoderPool(opts);
  pools.push(p);
  return p;
}

const job = (id: string, spoolPath = spool): EncodeJob => ({ spoolPath, staging: stagingIn(dir), id, complexity: 3, bitrate: 24000, skipSilence: true, maskDtmf: false });

/** A worker speaking the pool's protocol that dies on the job named CRASH / THROW. */
function crashingWorker(): URL {
  const file = join(dir, 'crashing-worker.mjs');
  writeFileSync(
    file,
    `import { parentPort } from 'node:worker_threads';
import { encodeSpool } from ${JSON.stringify(pathToFileURL(join(DIST, 'encode-spool.js')).href)};
parentPort.on('message', ({ op, seq, job }) => {
  if (op !== 'finish') return;
  if (job.id === 'CRASH') process.exit(7);
  if (job.id === 'THROW') setImmediate(() => { throw new Error('boom'); });
  else encodeSpool(job).then((result) => parentPort.postMessage({ op: 'done', seq, ok: true, result }));
});
`,
  );
  return pathToFileURL(file);
}

describe('EncoderPool', () => {
  it('encodes jobs on its workers and reports queue and busy counts', async () => {
    const p = pool({ workers: 2 });
    expect(p.alive).toBe(true);
    const jobs = ['J1', 'J2', 'J3'].map((id) => p.encode(job(id)));
    expect(p.busy).toBe(2);
    expect(p.queueLength).toBe(3);
    const results = await Promise.all(jobs);
    expect(results.map((r) => r.staged!.key)).toEqual(['J1', 'J2', 'J3'].map((id) => `recordings/2026/11/22/${id}.opus`));
    for (const r of results) {
      expect(r.status).toBe('complete');
      expect(r.durationMs).toBe(2000);
      expect(r.staged!.bytes).toBeGreaterThan(1000);
    }
    expect(p.busy).toBe(0);
    expect(p.queueLength).toBe(0);
  });

  it('passes an encoder error back with its code', async () => {
    const bad = join(dir, 'bad.spool');
    writeFileSync(bad, 'not a spool at all');
    const p = pool({ workers: 1 });
    await expect(p.encode(job('BAD', bad))).rejects.toMatchObject({ name: 'TallenneError', code: 'TALLENNE_SPOOL_CORRUPT' });
    expect((await p.encode(job('AFTERBAD'))).status).toBe('complete');
  });

  it('fails the job of a crashed worker with TALLENNE_ENCODE_FAILED and replaces the worker', async () => {
    const p = pool({ workers: 1, workerUrl: crashingWorker() });
    await expect(p.encode(job('CRASH'))).rejects.toMatchObject({ code: 'TALLENNE_ENCODE_FAILED' });
    expect((await p.encode(job('AFTER1'))).status).toBe('complete');
    await expect(p.encode(job('THROW'))).rejects.toMatchObject({ code: 'TALLENNE_ENCODE_FAILED' });
    expect((await p.encode(job('AFTER2'))).status).toBe('complete');
    expect(p.crashes).toBe(2);
    expect(p.alive).toBe(true);
  });

  it('spreads live calls over the workers, keeps each on its worker, and finishes it there', async () => {
    const p = pool({ workers: 2 });
    for (const id of ['L1', 'L2', 'L3']) p.follow(job(id));
    expect(p.liveCalls).toEqual([2, 1]);
    expect(p.busy).toBe(2);
    const done = await Promise.all(['L1', 'L2', 'L3'].map((id) => p.finish(job(id))));
    expect(done.map((r) => [r.status, r.durationMs])).toEqual([['complete', 2000], ['complete', 2000], ['complete', 2000]]);
    expect(p.liveCalls).toEqual([0, 0]);
    expect(p.queueLength).toBe(0);
  });

  it('gives up on workers that cannot start instead of hanging', async () => {
    const file = join(dir, 'broken-worker.mjs');
    writeFileSync(file, "throw new Error('cannot start');\n");
    const p = pool({ workers: 1, workerUrl: pathToFileURL(file) });
    const results = await Promise.allSettled([p.encode(job('W1')), p.encode(job('W2')), p.encode(job('W3')), p.encode(job('W4'))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'TALLENNE_ENCODE_FAILED' });
    }
    // Its replacements die too, with nothing to do: the pool stops respawning.
    await vi.waitFor(() => expect(p.alive).toBe(false), { timeout: 30_000 });
    await expect(p.encode(job('W5'))).rejects.toMatchObject({ code: 'TALLENNE_ENCODE_FAILED' });
  });

  it('close() finishes the queue, then refuses work; destroy() fails what is left', async () => {
    const p = pool({ workers: 1 });
    const queued = [p.encode(job('C1')), p.encode(job('C2'))];
    const closing = p.close();
    expect(p.close()).toBe(closing);
    expect(p.alive).toBe(false);
    await expect(p.encode(job('C3'))).rejects.toMatchObject({ code: 'TALLENNE_SHUTTING_DOWN' });
    expect((await Promise.all(queued)).map((r) => r.status)).toEqual(['complete', 'complete']);
    await closing;

    const q = pool({ workers: 1 });
    const settled = Promise.allSettled([q.encode(job('D1')), q.encode(job('D2'))]);
    await q.destroy();
    await q.destroy();
    for (const r of await settled) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'TALLENNE_SHUTTING_DOWN' });
    }
  });
});

describe('encoderWorkerCount', () => {
  it('gives one thread per core for "auto" and the number itself otherwise', () => {
    expect(encoderWorkerCount('auto', 2)).toBe(1);
    expect(encoderWorkerCount('auto', 8)).toBe(7);
    expect(encoderWorkerCount('auto', 1)).toBe(1);
    expect(encoderWorkerCount('auto', 0)).toBe(1);
    expect(encoderWorkerCount('auto', 200)).toBe(64);
    expect(encoderWorkerCount(3, 2)).toBe(3);
  });
});
