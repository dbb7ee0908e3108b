/**
 * The Finaliser with a stand-in encoder and index: the spool is deleted only after the entry
 * is committed; a failure keeps the spool, is reported once and is retried with backoff
 * until it succeeds; spools of an earlier run are recovered; no retry once stopping. A
 * recording staged by an earlier attempt is published again without an encode when its staged
 * file is whole, and encoded again (never published) when it is not.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Finaliser } from '../../../src/calls/finaliser.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/log.js';
import type { EncodeJob, EncodeResult } from '../../../src/encoder/encode-spool.js';
import type { RecordingEntry } from '../../../src/types.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { newSpoolKey } from '../../../src/spool/cipher.js';
import { SpoolWriter } from '../../../src/spool/writer.js';
import { openStagedWriter, verifyStaged } from '../../../src/storage/staging.js';

function result(job: EncodeJob): EncodeResult {
  const answeredAt = Date.UTC(2026, 0, 1);
  return {
    meta: { id: job.id, callId: 'c@x', siprec: false, answeredAt, direction: 'inbound', participants: [], legs: [] },
    staged: { key: `recordings/2026/01/01/${job.id}.opus`, bytes: 100, storedBytes: 100, sha256: 'ab'.repeat(32), encrypted: false, area: job.staging },
    answeredAt, endedAt: answeredAt + 1000, durationMs: 1000, status: 'complete', endReason: 'bye',
    legs: [], pauses: [], dtmf: [], sampleRate: 8000, channels: 2, audioMs: 1000, encodeCpuMs: 1, framesEncoded: 50, framesSkipped: 0, spoolRecordsRejected: 0,
  };
}

describe('Finaliser', () => {
  let dir: string;
  let config: Config;
  let jobs: EncodeJob[];
  let failures: number;
  let stored: RecordingEntry[];
  let finaliser: Finaliser;

  const spool = (id: string): string => {
    const p = join(dir, `${id}.spool`);
    writeFileSync(p, 'spool');
    return p;
  };

  let followed: EncodeJob[] = [];
  /** How each job was encoded: the end of a followed call, or a whole spool. */
  let ways: string[] = [];
  const encode = async (job: EncodeJob, way: string): Promise<EncodeResult> => {
    jobs.push(job);
    ways.push(way);
    if (failures > 0) {
      failures--;
      throw new Error('disk full');
    }
    return result(job);
  };

  beforeEach(() => {
    followed = [];
    ways = [];
    dir = mkdtempSync(join(tmpdir(), 'tallenne-finaliser-'));
    config = parseConfigText(`[storage]\ndir = "${dir}"\n[encoder]\ncomplexity = 3\n[retention]\naudio = "30 days"\n`, join(dir, 'tallenne.toml')).config;
    jobs = [];
    failures = 0;
    stored = [];
    finaliser = new Finaliser({
      config: () => config,
      log: createLogger('silent'),
      spoolDir: dir,
      // Publishing answers what was staged (the store itself is tested by the conformance suite).
      store: { staging: { kind: 'local', dir }, publish: async (s) => ({ key: s.key, bytes: s.bytes, storedBytes: s.storedBytes, sha256: s.sha256 }) },
      retry: { baseMs: 5, maxMs: 20 },
      encoder: {
        follow: (job) => void followed.push(job),
        finish: async (job) => encode(job, 'finish'),
        encode: async (job) => encode(job, 'whole'),
      },
      index: {
        put: async (entry) => {
          // The spool must still be there while the entry is committed.
          expect(existsSync(join(dir, `${entry.id}.spool`))).toBe(true);
          stored.push(entry);
        },
      },
    });
  });

  afterEach(() => {
    finaliser.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows a call from its answer with the settings in force then, finishes it once its spool is closed, then deletes the spool', async () => {
    let close!: () => void;
    const closed = new Promise<void>((r) => { close = r; });
    const recorded = new Promise<[RecordingEntry, number | null]>((r) => finaliser.once('recorded', (e, _res, ms) => r([e, ms])));
    finaliser.follow({ id: 'r1', spoolPath: spool('r1') });
    // The job is prepared (its keys, when encryption is on) before the encoder gets it.
    await new Promise((r) => setImmediate(r));
    expect(followed.map((j) => [j.id, j.complexity, j.bitrate])).toEqual([['r1', 3, 24000]]);
    // A reload during the call applies from the next call on: the file keeps one setting.
    config = { ...config, encoder: { ...config.encoder, bitrate: 32000 } };
    finaliser.take({ id: 'r1', spoolPath: spool('r1'), closed });
    expect(finaliser.pending).toBe(1);
    close();
    const [entry, finaliseMs] = await recorded;
    await finaliser.settled();
    expect(jobs.map((j) => [j.id, j.complexity, j.bitrate])).toEqual([['r1', 3, 24000]]);
    expect(ways).toEqual(['finish']);
    expect(finaliseMs).toBeGreaterThanOrEqual(0);
    expect(entry.retention?.policy).toBeDefined();
    expect(Date.parse(entry.retention!.audioExpiresAt) - Date.parse(entry.endedAt)).toBe(30 * 86_400_000);
    expect(existsSync(join(dir, 'r1.spool'))).toBe(false);
    expect(finaliser.pending).toBe(0);
  });

  it('keeps the spool on failure, reports it once, and retries until it is stored', async () => {
    failures = 2;
    const failed: string[] = [];
    finaliser.on('failed', (id) => failed.push(id));
    const recorded = new Promise<void>((r) => finaliser.once('recorded', () => r()));
    finaliser.take({ id: 'r2', spoolPath: spool('r2'), closed: Promise.resolve() });
    await recorded;
    expect(failed).toEqual(['r2']);
    expect(jobs).toHaveLength(3);
    // The first try finishes the call; retries encode the whole spool.
    expect(ways).toEqual(['finish', 'whole', 'whole']);
    expect(stored.map((e) => e.id)).toEqual(['r2']);
    expect(existsSync(join(dir, 'r2.spool'))).toBe(false);
  });

  it('recovers the spools of an earlier run; once stopping, a failure waits for the next start', async () => {
    spool('old1');
    spool('old2');
    writeFileSync(join(dir, 'notes.txt'), 'not a spool');
    failures = 1;
    finaliser.stopRetrying();
    expect(await finaliser.recoverSpools()).toEqual({ started: 2, leasedElsewhere: 0, unanswered: 0 });
    await finaliser.settled();
    expect(jobs.map((j) => j.id).sort()).toEqual(['old1', 'old2']);
    expect(ways).toEqual(['whole', 'whole']);
    expect(stored).toHaveLength(1);
    // The failed one is still there for the next start.
    expect([existsSync(join(dir, 'old1.spool')), existsSync(join(dir, 'old2.spool'))].filter(Boolean)).toHaveLength(1);
  });

  it('gives a live listen the followed call\'s own job: its spool, its settings and a copy of its sealed spool key', async () => {
    expect(await finaliser.listenJob('nobody', 0)).toBeNull();
    finaliser.follow({ id: 'r4', spoolPath: spool('r4') });
    config = { ...config, encoder: { ...config.encoder, bitrate: 32000 } };
    expect(await finaliser.listenJob('r4', 1234)).toEqual({ spoolPath: join(dir, 'r4.spool'), fromMs: 1234, complexity: 3, bitrate: 24000, maskDtmf: false });
    // Once the call has ended there is nothing to listen to.
    finaliser.take({ id: 'r4', spoolPath: join(dir, 'r4.spool'), closed: Promise.resolve() });
    expect(await finaliser.listenJob('r4', 0)).toBeNull();
    await finaliser.settled();

    // A sealed spool: the key comes unwrapped once, as the encoder's, and the listen gets its own copy.
    const ring = Keyring.open({ master_key_file: join(dir, 'master.key') });
    const sealedPath = join(dir, 'r5.spool');
    const writer = new SpoolWriter(sealedPath, newSpoolKey(ring, 'r5'));
    writer.appendMeta(Date.now(), { id: 'r5', callId: 'c@x', siprec: false, answeredAt: Date.now(), direction: 'inbound', participants: [], legs: [] });
    writer.flush();
    const sealed = new Finaliser({ config: () => config, log: createLogger('silent'), spoolDir: dir, spoolKeys: ring, store: { staging: { kind: 'local', dir }, publish: async () => { throw new Error('not here'); } }, encoder: { follow: (job) => void followed.push(job), finish: async (job) => result(job), encode: async (job) => result(job) }, index: { put: async () => undefined } });
    sealed.follow({ id: 'r5', spoolPath: sealedPath });
    const job = await sealed.listenJob('r5', 0);
    const own = followed.find((j) => j.id === 'r5')!;
    expect(own.spoolKey).toHaveLength(32);
    expect(Buffer.from(job!.spoolKey!).equals(Buffer.from(own.spoolKey!))).toBe(true);
    expect(job!.spoolKey!.buffer).not.toBe(own.spoolKey!.buffer);
    job!.spoolKey!.fill(0);
    expect(own.spoolKey!.some((b) => b !== 0)).toBe(true);
    sealed.close();
    await writer.close(null);
  });
});

describe('Finaliser: a recording staged by an earlier attempt', () => {
  let dir: string;
  let config: Config;
  let ways: string[];
  let outcomes: string[];
  /** What each publish was handed, and whether the staged file then matched it. */
  let published: Array<{ sha256: string; problem: string | null }>;
  let publishFailures: number;
  let finaliser: Finaliser;

  const spool = (id: string): string => {
    const p = join(dir, `${id}.spool`);
    writeFileSync(p, 'spool');
    return p;
  };
  /** Stages real bytes (different each encode) in the job's staging area, as the worker does. */
  const encode = async (job: EncodeJob, way: string): Promise<EncodeResult> => {
    ways.push(way);
    const w = openStagedWriter(job.staging, `recordings/2026/01/01/${job.id}.opus`);
    w.write(Buffer.from(`OggS audio of ${job.id}, encode ${ways.length} `.repeat(50)));
    return { ...result(job), staged: w.finish() };
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tallenne-finaliser-'));
    config = parseConfigText(`[storage]\ndir = "${dir}"\n`, join(dir, 'tallenne.toml')).config;
    ways = [];
    outcomes = [];
    published = [];
    publishFailures = 0;
    const staging = { kind: 'local' as const, dir: join(dir, 'outbox') };
    mkdirSync(staging.dir);
    finaliser = new Finaliser({
      config: () => config,
      log: createLogger('silent'),
      spoolDir: dir,
      store: {
        staging,
        publish: async (s) => {
          published.push({ sha256: s.sha256, problem: await verifyStaged(s) });
          if (publishFailures > 0) {
            publishFailures--;
            throw new Error('S3 upload failed');
          }
          return { key: s.key, bytes: s.bytes, storedBytes: s.storedBytes, sha256: s.sha256 };
        },
      },
      retry: { baseMs: 5, maxMs: 20 },
      encoder: { follow: () => undefined, finish: async (job) => encode(job, 'finish'), encode: async (job) => encode(job, 'whole') },
      index: { put: async () => undefined },
    });
    finaliser.on('staged', (_id, outcome) => outcomes.push(outcome));
  });

  afterEach(() => {
    finaliser.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes it again without encoding when it is whole; the note goes with the spool', async () => {
    publishFailures = 2;
    const recorded = new Promise<void>((r) => finaliser.once('recorded', () => r()));
    finaliser.take({ id: 's1', spoolPath: spool('s1'), closed: Promise.resolve() });
    await recorded;
    expect(ways).toEqual(['finish']);
    expect(outcomes).toEqual(['reused', 'reused']);
    expect(published).toHaveLength(3);
    expect(new Set(published.map((p) => p.sha256)).size).toBe(1);
    expect(published.every((p) => p.problem === null)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith('s1'))).toEqual([]);
  });

  it('encodes the spool again when the staged file was altered or its note cannot be read, and never publishes the bad file', async () => {
    publishFailures = 1;
    finaliser.stopRetrying();
    finaliser.take({ id: 's2', spoolPath: spool('s2'), closed: Promise.resolve() });
    await finaliser.settled();
    expect(ways).toEqual(['finish']);
    // Left for the next start: one byte of the staged file changes (same size).
    const [stagedName] = readdirSync(join(dir, 'outbox'));
    const file = join(dir, 'outbox', stagedName!);
    const bytes = readFileSync(file);
    bytes[10] ^= 0xff;
    writeFileSync(file, bytes);
    expect(await finaliser.recoverSpools()).toMatchObject({ started: 1 });
    await finaliser.settled();
    expect(outcomes).toEqual(['reencoded']);
    expect(ways).toEqual(['finish', 'whole']);
    expect(published).toHaveLength(2);
    expect(published[1]!.sha256).not.toBe(published[0]!.sha256);
    expect(published[1]!.problem).toBeNull();
    expect(existsSync(join(dir, 's2.spool'))).toBe(false);

    // A note cut short (a crash while it was written) is not trusted either.
    spool('s3');
    writeFileSync(join(dir, 's3.staged.json'), '{"version":1,"res');
    expect(await finaliser.recoverSpools()).toMatchObject({ started: 1 });
    await finaliser.settled();
    expect(outcomes).toEqual(['reencoded', 'reencoded']);
    expect(ways).toEqual(['finish', 'whole', 'whole']);
    expect(readdirSync(dir).filter((f) => f.startsWith('s3'))).toEqual([]);
  });
});
