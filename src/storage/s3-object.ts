/**
 * One S3 object read as random-access bytes: its size (HEAD) and ranged GETs. What the
 * chunked-format reader needs to decrypt any byte range of a recording without fetching
 * the rest; a plain recording is streamed from one ranged GET.
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { storageError } from './s3-upload.js';

export class S3Object {
  constructor(private readonly client: S3Client, private readonly bucket: string, readonly key: string) {}

  /** Stored bytes; null when there is no such object. */
  async size(): Promise<number | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key }));
      return head.ContentLength ?? 0;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw storageError('HEAD', e);
    }
  }

  /** Up to `length` bytes from `position` (fewer at the end of the object). */
  async read(position: number, length: number): Promise<Buffer> {
    if (length <= 0) return Buffer.alloc(0);
    const body = await this.body(position, position + length - 1);
    const parts: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) parts.push(chunk);
    return Buffer.concat(parts);
  }

  /** The bytes start..end (inclusive), or the whole object, as a stream. */
  async body(start?: number, end?: number): Promise<Readable> {
    try {
      const got = await this.client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        ...(start !== undefined ? { Range: `bytes=${start}-${end ?? ''}` } : {}),
      }));
      return got.Body as Readable;
    } catch (e) {
      throw storageError('GET', e);
    }
  }
}

export function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err.$metadata?.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey';
}
