/**
 * The tests' S3 is real: the run's Swift (tests/support/swift.ts) checks AWS signatures, so a
 * wrong secret is refused, and it keeps what it is given.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeS3Client } from '../../src/storage/s3-client.js';
import { PART_BYTES, uploadVerified } from '../../src/storage/s3-upload.js';
import { tempDir } from '../support/cleanup.js';
import { swiftInstalled, useSwift, type S3Endpoint } from '../support/swift.js';

describe.skipIf(!swiftInstalled())('the test S3 (Swift with s3api)', () => {
  let s3: S3Endpoint;
  beforeAll(async () => {
    s3 = await useSwift();
  }, 120_000);

  const client = (secret: string) => makeS3Client(
    { bucket: 'unused', prefix: '', endpoint: s3.endpoint, region: s3.region, forcePathStyle: true },
    { accessKeyId: s3.accessKeyId, secretAccessKey: secret },
  );

  it('stores and returns an object under the right secret', async () => {
    const c = client(s3.secretAccessKey);
    const bucket = `t-${randomBytes(6).toString('hex')}`;
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
    const body = randomBytes(4096);
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b.opus', Body: body }));
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b.opus', Range: 'bytes=100-199' }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body.subarray(100, 200));
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'a/b.opus' }));
    await c.send(new DeleteBucketCommand({ Bucket: bucket }));
    c.destroy();
  });

  it('refuses a wrong secret with 403', async () => {
    const c = client(`${s3.secretAccessKey}x`);
    const err = await c.send(new ListBucketsCommand({})).then(() => null, (e: { $metadata?: { httpStatusCode?: number }; name?: string }) => e);
    expect(err?.$metadata?.httpStatusCode).toBe(403);
    expect(err?.name).toBe('SignatureDoesNotMatch');
    c.destroy();
  });

  it('uploads a file in one PUT or in parts and checks what S3 holds against it (size, ETag, SHA-256)', async () => {
    const c = client(s3.secretAccessKey);
    const bucket = `t-${randomBytes(6).toString('hex')}`;
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
    const dir = tempDir('s3up');
    for (const size of [1000, PART_BYTES, PART_BYTES * 2 + 12345]) {
      const file = join(dir, `f${size}`);
      const body = randomBytes(size);
      writeFileSync(file, body);
      const digest = await uploadVerified(c, bucket, `k/${size}`, file);
      expect(digest.bytes).toBe(size);
      const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: `k/${size}` }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
      await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: `k/${size}` }));
    }
    const bad = client(`${s3.secretAccessKey}x`);
    const err = await uploadVerified(bad, bucket, 'k/refused', join(dir, 'f1000')).then(() => null, (e: Error & { code?: string }) => e);
    expect(err?.code).toBe('TALLENNE_STORAGE_UNAVAILABLE');
    expect(err?.message).toMatch(/403/);
    expect(err?.message).not.toContain(s3.secretAccessKey);
    await c.send(new DeleteBucketCommand({ Bucket: bucket }));
    c.destroy();
    bad.destroy();
  });
});
