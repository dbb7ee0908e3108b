/**
 * Uploads one finished file to S3 and proves it arrived whole. Big files go up in parts
 * (lib-storage's multipart Upload); afterwards the object's size and ETag are compared with
 * what the local file gives: the ETag of a single PUT is the MD5 of the bytes, that of a
 * multipart upload the MD5 of the parts' MD5s and their count, so S3 has to have hashed the
 * very bytes we sent. The file's SHA-256 travels as object metadata (`x-amz-meta-sha256`)
 * and is returned for the index entry.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { TallenneError } from '../errors.js';
import { Undeliverable } from './outbox.js';

/** Part size of multipart uploads; a file up to this size goes up in one PUT. */
export const PART_BYTES = 8 * 1024 * 1024;

export interface FileDigest {
  readonly bytes: number;
  readonly sha256: string;
  /** The ETag a single PUT of the file gets. */
  readonly md5: string;
  /** The ETag a multipart upload in PART_BYTES parts gets. */
  readonly multipartEtag: string;
}

/** Hashes a file in one pass: SHA-256, MD5, and the MD5 of each PART_BYTES part. */
export async function digestFile(file: string, partBytes = PART_BYTES): Promise<FileDigest> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  const partMd5s: Buffer[] = [];
  let part = createHash('md5');
  let inPart = 0;
  let bytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    sha.update(chunk);
    md5.update(chunk);
    bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(partBytes - inPart, chunk.length - off);
      part.update(chunk.subarray(off, off + take));
      inPart += take;
      off += take;
      if (inPart === partBytes) {
        partMd5s.push(part.digest());
        part = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0 || partMd5s.length === 0) partMd5s.push(part.digest());
  return {
    bytes,
    sha256: sha.digest('hex'),
    md5: md5.digest('hex'),
    multipartEtag: `${createHash('md5').update(Buffer.concat(partMd5s)).digest('hex')}-${partMd5s.length}`,
  };
}

/** An S3 failure as our error: the operation, the S3 error name and the HTTP status, never a credential. */
export function storageError(op: string, e: unknown): TallenneError {
  if (e instanceof TallenneError) return e;
  const err = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  const what = [err.name ?? err.code ?? 'error', status ? `HTTP ${status}` : (e as Error).message].filter(Boolean).join(', ');
  return new TallenneError('TALLENNE_STORAGE_UNAVAILABLE', `S3 ${op} failed: ${what}`, { cause: e });
}

/**
 * Uploads `file` to `bucket`/`objectKey`, then checks the stored object's size and ETag.
 * Resolves with the file's digest; throws TALLENNE_STORAGE_UNAVAILABLE when S3 cannot be
 * reached or refuses, TALLENNE_UPLOAD_MISMATCH when what it holds is not what was sent. A
 * file that is not what was written (`expectSha256`) is Undeliverable: it is not sent.
 */
export async function uploadVerified(client: S3Client, bucket: string, objectKey: string, file: string, expectSha256?: string): Promise<FileDigest> {
  const digest = await digestFile(file);
  const { size } = await stat(file);
  if (size !== digest.bytes) throw new Undeliverable('TALLENNE_UPLOAD_MISMATCH', `${objectKey}: the staged file changed while it was hashed`);
  if (expectSha256 !== undefined && digest.sha256 !== expectSha256) throw new Undeliverable('TALLENNE_UPLOAD_MISMATCH', `${objectKey}: the staged file is not what was written (SHA-256 differs)`);
  try {
    const upload = new Upload({
      client,
      params: { Bucket: bucket, Key: objectKey, Body: createReadStream(file), ContentType: 'application/octet-stream', Metadata: { sha256: digest.sha256 } },
      partSize: PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await upload.done();
  } catch (e) {
    throw storageError('upload', e);
  }
  let head;
  try {
    head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey }));
  } catch (e) {
    throw storageError('HEAD after upload', e);
  }
  const etag = (head.ETag ?? '').replaceAll('"', '');
  const expected = etag.includes('-') ? digest.multipartEtag : digest.md5;
  if (head.ContentLength !== digest.bytes || etag !== expected || head.Metadata?.sha256 !== digest.sha256) {
    throw new TallenneError('TALLENNE_UPLOAD_MISMATCH', `${objectKey}: S3 holds ${head.ContentLength} bytes with ETag ${etag}; ${digest.bytes} bytes with ETag ${expected} were sent`);
  }
  return digest;
}
