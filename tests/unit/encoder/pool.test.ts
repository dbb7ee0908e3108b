import { describe, it, expect, beforeAll, afterEach, vi } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EncoderPool, encoderWorkerCount } from '../../../src/encoder/pool.js';
import type { EncodeJob } from '../../../src/encoder/encode-spool.js';
import { writeSpoolFixture } from '../../support/spool-fixture.js';
import { tempDir } from '../../support/cleanup.js';
import { stagingIn } from '../../support/store.js';
import { decodeWithFfmpeg, tonePower } from '../../support/audio.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { newSpoolKey } from '../../../src/spool/cipher.js';
import type { ListenSink } from '../../../src/encoder/pool.js';
import type { ListenEnd, ListenJob } from '../../../src/encoder/listen-stream.js';

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

describe('EncoderPool live listens', () => {
  const legs = [
    { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
    { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
  ] as const;
  const listenJob = (spoolPath: string, fromMs: number, more: Partial<ListenJob> = {}): ListenJob => ({ spoolPath, fromMs, complexity: 3, bitrate: 24000, maskDtmf: false, ...more });

  /** A listener that keeps every page, acknowledging them or not. */
  function listener(ack: boolean): { sink: ListenSink; pages: Buffer[]; ended: Promise<ListenEnd> } {
    const pages: Buffer[] = [];
    let done!: (e: ListenEnd) => void;
    const ended = new Promise<ListenEnd>((r) => (done = r));
    return { pages, ended, sink: { page: (page, sent) => { pages.push(page); if (ack) sent(); }, end: (e) => done(e) } };
  }

  it('encodes a listen of a sealed spool on an encoder thread and moves its pages back; the key given is overwritten', async () => {
    const ring = Keyring.open({ master_key_file: join(dir, 'listen-master.key') });
    const sealed = newSpoolKey(ring, 'LISTENED');
    const key = Uint8Array.from(sealed.key);
    const fx = await writeSpoolFixture({ path: join(dir, 'listened.spool'), durationMs: 3000, legs, key: sealed });
    const p = pool({ workers: 2 });
    const l = listener(true);
    p.listen('LISTENED', listenJob(fx.path, fx.answeredAt, { spoolKey: key }), l.sink);
    expect(key.every((b) => b === 0)).toBe(true);
    expect(p.listening).toBe(1);
    const end = await l.ended;
    expect(end.reason).toBe('call_ended');
    // Encoded on a worker (the main thread is 0), not here.
    expect(end.thread).toBeGreaterThan(0);
    expect(end.bytes).toBe(l.pages.reduce((n, b) => n + b.length, 0));
    // Each page is a view on the buffer the worker moved, not a slice of a shared pool.
    for (const page of l.pages) expect(page.buffer.byteLength).toBe(page.length);
    expect(p.listening).toBe(0);
    const file = join(dir, 'listened.opus');
    writeFileSync(file, Buffer.concat(l.pages));
    const [left, right] = decodeWithFfmpeg(file).channels;
    expect(tonePower(left!, 8000, 440, 800, 8000 * 2.5)).toBeGreaterThan(0.5);
    expect(tonePower(right!, 8000, 1000, 800, 8000 * 2.5)).toBeGreaterThan(0.5);
  });

  it('cuts off a listener that takes nothing once its window waits, and frees the worker', async () => {
    const fx = await writeSpoolFixture({ path: join(dir, 'slow.spool'), durationMs: 30_000, legs });
    const p = pool({ workers: 1 });
    const l = listener(false);
    p.listen('SLOW', listenJob(fx.path, fx.answeredAt, { windowBytes: 4096 }), l.sink);
    const end = await l.ended;
    expect(end.reason).toBe('too_slow');
    const held = l.pages.reduce((n, b) => n + b.length, 0);
    expect(held).toBeLessThanOrEqual(4096);
    expect(end.bytes).toBe(held);
    // It stopped there: far less than the call's 30 s was encoded.
    expect(end.frames).toBeLessThan(1500);
    expect(p.listening).toBe(0);
  });

  it('stops a listen when the listener goes away, ends the rest as shutdown when the pool goes, and refuses new ones', async () => {
    // A call still going on (no END record), answered 3 s ago: the worker's arrival clock is the wall clock.
    const fx = await writeSpoolFixture({ path: join(dir, 'ongoing.spool'), answeredAt: Date.now() - 3000, durationMs: 3000, legs, end: false });
    const p = pool({ workers: 2 });
    p.follow(job('ONGOING', fx.path));
    const gone = listener(true);
    const stays = listener(true);
    const h = p.listen('ONGOING', listenJob(fx.path, fx.answeredAt), gone.sink);
    p.listen('ONGOING', listenJob(fx.path, fx.answeredAt), stays.sink);
    await vi.waitFor(() => expect(gone.pages.length).toBeGreaterThan(0), { timeout: 10_000 });
    h.stop();
    expect((await gone.ended).reason).toBe('listener_gone');
    expect(p.listening).toBe(1);
    await p.destroy();
    expect((await stays.ended).reason).toBe('shutdown');
    expect(() => p.listen('ONGOING', listenJob(fx.path, fx.answeredAt), listener(true).sink)).toThrow(expect.objectContaining({ code: 'TALLENNE_SHUTTING_DOWN' }));
  });
});

describe('encoderWorkerCount', () => {
  it('gives one thread per core for "auto" and the number itself otherwise', () => {
    expect(encoderWorkerCount('auto', 2)).toBe(2);
    expect(encoderWorkerCount('auto', 8)).toBe(8);
    expect(encoderWorkerCount('auto', 1)).toBe(1);
    expect(encoderWorkerCount('auto', 0)).toBe(1);
    expect(encoderWorkerCount('auto', 200)).toBe(64);
    expect(encoderWorkerCount(3, 2)).toBe(3);
  });
});
