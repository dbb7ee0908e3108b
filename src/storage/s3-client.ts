/**
 * The one place an S3 client is made (the only module besides s3-audio-store.ts that imports
 * the AWS SDK). Checksums are sent only where S3 requires them: S3-compatible servers (Swift,
 * Ceph, MinIO of older releases) refuse the SDK's default trailing-checksum uploads. The
 * store checks what it uploaded itself (size and ETag, s3-audio-store.ts).
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { S3Credentials } from './s3-credentials.js';

export interface S3Location {
  readonly bucket: string;
  /** Key prefix inside the bucket ("" or ending in "/" by convention; used as given). */
  readonly prefix: string;
  /** Absent: AWS's own endpoint for the region. */
  readonly endpoint?: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
}

export function makeS3Client(at: S3Location, credentials: S3Credentials): S3Client {
  return new S3Client({
    region: at.region,
    ...(at.endpoint ? { endpoint: at.endpoint } : {}),
    forcePathStyle: at.forcePathStyle,
    credentials: { ...credentials },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Retries within a request are few: the outbox retries a failed upload with its own backoff.
    maxAttempts: 2,
  });
}
