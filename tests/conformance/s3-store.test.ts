/**
 * The S3 store runs the AudioStore conformance suite against the run's Swift (real AWS
 * signatures), one fresh key prefix per test; then what only a remote store has: a publish
 * waits in the outbox while S3 cannot be reached (a relay of this file's own is cut) and
 * completes when it is back, and the objects land under the configured prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { S3AudioStore } from '../../src/storage/s3-audio-store.js';
import { makeS3Client, type S3Location } from '../../src/storage/s3-client.js';
import { recordingKey } from '../../src/storage/audio-store.js';
import { stagedPath } from '../../src/storage/staging.js';
import { describeStoreConformance } from './store-conformance.js';
import { tempDir } from '../support/cleanup.js';
import { startRelay, swiftInstalled, useSwift, type S3Endpoint } from '../support/swift.js';

const bucket = `conf-${randomBytes(5).toString('hex')}`;
let s3: S3Endpoint;
let admin: S3Client;
let stores = 0;

const where = (endpoint: string, prefix: string): S3Location => ({ bucket, prefix, endpoint, region: s3.region, forcePathStyle: true });

describe.skipIf(!swiftInstalled())('S3AudioStore', () => {
  beforeAll(async () => {
    s3 = await useSwift();
    admin = makeS3Client(where(s3.endpoint, ''), s3);
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  }, 120_000);
  afterAll(() => admin?.destroy());

  describeStoreConformance('S3 (Swift with s3api)', async ({ keys, dir }) => {
    const store = new S3AudioStore({ location: where(s3.endpoint, `t${++stores}/`), credentials: s3, outboxDir: join(dir, 'outbox'), keys });
    return { store, close: async () => store.close() };
  });

  it('keeps a publish waiting in the outbox while S3 is unreachable, and completes it when S3 is back', async () => {
    const relay = await startRelay(s3.endpoint);
    const failures: number[] = [];
    const store = new S3AudioStore({
      location: where(relay.endpoint, 'site-a/'), credentials: s3, outboxDir: join(tempDir('s3-outbox'), 'outbox'),
      retry: { baseMs: 50, maxMs: 200, onFailure: (_k, _e, attempt) => failures.push(attempt) },
    });
    try {
      const key = recordingKey('01JS3OUTBOX000000000000001', Date.UTC(2026, 10, 24));
      relay.cut();
      const w = store.create(key);
      const plain = randomBytes(20_000);
      w.write(plain);
      const committed = w.commit();
      while (failures.length < 3) await new Promise((r) => setTimeout(r, 20));
      expect(store.outbox.waiting).toBe(1);
      expect(store.outbox.failures).toBeGreaterThanOrEqual(3);
      expect(store.outbox.lastError).toMatch(/^S3 upload failed/);
      expect(existsSync(stagedPath(store.staging, key))).toBe(true);
      relay.restore();
      const stored = await committed;
      expect(stored).toMatchObject({ key, bytes: plain.length, storedBytes: plain.length });
      expect(store.outbox.waiting).toBe(0);
      expect(store.outbox.lastError).toBeNull();
      expect(existsSync(stagedPath(store.staging, key))).toBe(false);
      const head = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: `site-a/${key}` }));
      expect(head.ContentLength).toBe(plain.length);
      expect(head.Metadata?.sha256).toBe(stored.sha256);
    } finally {
      store.close();
      await relay.close();
    }
  });
});
