/**
 * The AudioStore in an S3 bucket (`[storage] backend = "s3"`): recording `key` is the object
 * `<prefix><key>`. New recordings are staged on local disk in the outbox
 * (`storage.dir/outbox`, outbox.ts); publishing uploads the staged file, checks what the
 * bucket holds against it (s3-upload.ts) and only then answers, so the finaliser commits the
 * index entry and deletes the spool after the upload is confirmed. While S3 is away a publish
 * waits in the outbox, retried with backoff, and calls go on being recorded.
 *
 * Reads are ranged GETs: the chunked format is opened by sealed-read.ts over them, fetching
 * a window at a time. Free and volume bytes are those of the local volume holding the
 * outbox (where audio waits); used bytes come from a listing, at most once a minute (the
 * last count while the bucket cannot be listed).
 */
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { stat, statfs } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { KeyWrapper } from '../crypto/keyring.js';
import { checkKey, everyStored, type AudioInfo, type AudioListing, type AudioPage, type AudioRef, type AudioStore, type AudioWriter, type ByteRange, type StagedAudio, type StagingArea, type StoreUsage, type StoredAudio } from './audio-store.js';
import { stagedPath, storeWriter } from './staging.js';
import { PlaintextReader, type StoredObject } from './sealed-read.js';
import { Outbox, Undeliverable, type OutboxOptions } from './outbox.js';
import { makeS3Client, type S3Location } from './s3-client.js';
import type { S3Credentials } from './s3-credentials.js';
import { S3Object } from './s3-object.js';
import { storageError, uploadVerified } from './s3-upload.js';

export interface S3AudioStoreOptions {
  readonly location: S3Location;
  readonly credentials: S3Credentials;
  /** The local outbox folder (`storage.dir/outbox`). */
  readonly outboxDir: string;
  /** Unwraps the data keys of encrypted recordings; without it only plain ones can be read. */
  readonly keys?: KeyWrapper | null;
  /** Retry backoff and failure reports of the outbox. */
  readonly retry?: OutboxOptions;
}

const USED_REFRESH_MS = 60_000;
const LIST_PAGE = 1000;
/** Bytes fetched per ranged GET when reading an encrypted recording chunk by chunk. */
const READ_WINDOW = 1024 * 1024;

export class S3AudioStore implements AudioStore {
  readonly outbox: Outbox;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly reader: PlaintextReader;
  private used: { at: number; bytes: number } | null = null;
  private counting: Promise<number> | null = null;

  constructor(opts: S3AudioStoreOptions) {
    this.client = makeS3Client(opts.location, opts.credentials);
    this.bucket = opts.location.bucket;
    this.prefix = opts.location.prefix;
    this.reader = new PlaintextReader(opts.keys ?? null);
    this.outbox = new Outbox(opts.outboxDir, opts.retry);
  }

  get staging(): StagingArea {
    return this.outbox.area;
  }

  get decryptFailures(): number {
    return this.reader.decryptFailures;
  }

  create(key: string, dataKey?: Uint8Array): AudioWriter {
    return storeWriter(this, key, dataKey, () => this.outbox.discard(key));
  }

  async publish(staged: StagedAudio): Promise<StoredAudio> {
    if (staged.area.kind !== 'local' || staged.area.dir !== this.staging.dir) throw new Error(`recording ${staged.key} was staged for another store`);
    const file = stagedPath(staged.area, staged.key);
    const size = (await stat(file)).size;
    if (size !== staged.storedBytes) throw new Undeliverable('TALLENNE_UPLOAD_MISMATCH', `the staged file of ${staged.key} has ${size} bytes, not the ${staged.storedBytes} written`);
    const digest = await this.outbox.deliver(staged.key, () => uploadVerified(this.client, this.bucket, this.objectKey(staged.key), file, staged.sha256));
    if (this.used) this.used.bytes += digest.bytes;
    return { key: staged.key, bytes: staged.bytes, storedBytes: digest.bytes, sha256: digest.sha256 };
  }

  async open(ref: AudioRef, range?: ByteRange): Promise<Readable> {
    return this.reader.open(ref, await this.object(ref.file), range);
  }

  async stat(ref: AudioRef): Promise<AudioInfo | null> {
    return this.reader.stat(ref, await this.object(ref.file));
  }

  async remove(key: string): Promise<boolean> {
    const obj = new S3Object(this.client, this.bucket, this.objectKey(key));
    const size = await obj.size();
    if (size === null) return false;
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: obj.key }));
    } catch (e) {
      throw storageError('DELETE', e);
    }
    if (this.used) this.used.bytes = Math.max(0, this.used.bytes - size);
    return true;
  }

  async list(page: { readonly cursor?: string; readonly limit: number }): Promise<AudioPage> {
    const limit = Math.max(1, Math.floor(page.limit));
    const items: AudioListing[] = [];
    let after = page.cursor === undefined ? undefined : this.objectKey(page.cursor);
    for (;;) {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket, Prefix: `${this.prefix}recordings/`, MaxKeys: Math.min(limit - items.length, LIST_PAGE), ...(after !== undefined ? { StartAfter: after } : {}),
        }));
      } catch (e) {
        throw storageError('LIST', e);
      }
      const got = res.Contents ?? [];
      for (const o of got) {
        const key = o.Key!.slice(this.prefix.length);
        if (key.endsWith('.opus')) items.push({ key, storedBytes: o.Size ?? 0 });
      }
      after = got.at(-1)?.Key ?? after;
      if (items.length >= limit) return { items, cursor: items[items.length - 1]!.key };
      if (!res.IsTruncated || got.length === 0) return { items };
    }
  }

  async usage(opts: { readonly used?: boolean } = {}): Promise<StoreUsage> {
    const s = await statfs(this.staging.dir);
    const volume = { freeBytes: s.bavail * s.bsize, volumeBytes: s.blocks * s.bsize };
    if (!opts.used) return volume;
    // While the bucket cannot be listed the last count stands (none before the first):
    // the metrics page and readiness must not fail with S3.
    const used = await this.usedBytes().catch(() => this.used?.bytes);
    return used === undefined ? volume : { ...volume, usedBytes: used };
  }

  /** Stops retrying uploads (the daemon stopping); see Outbox.close. */
  stopRetrying(): void {
    this.outbox.close();
  }

  close(): void {
    this.outbox.close();
    this.client.destroy();
  }

  private async usedBytes(): Promise<number> {
    if (this.used && Date.now() - this.used.at < USED_REFRESH_MS) return this.used.bytes;
    this.counting ??= (async () => {
      try {
        let total = 0;
        for await (const i of everyStored(this, LIST_PAGE)) total += i.storedBytes;
        this.used = { at: Date.now(), bytes: total };
        return total;
      } finally {
        this.counting = null;
      }
    })();
    return this.counting;
  }

  private objectKey(key: string): string {
    return `${this.prefix}${checkKey(key)}`;
  }

  /** Random access to the object of `key` through ranged GETs; null when there is none. */
  private async object(key: string): Promise<StoredObject | null> {
    const obj = new S3Object(this.client, this.bucket, this.objectKey(key));
    const storedBytes = await obj.size();
    if (storedBytes === null) return null;
    // Chunks are read in order: one GET fetches a window that serves the next reads.
    let window: { start: number; bytes: Buffer } | null = null;
    return {
      storedBytes,
      read: async (position, length) => {
        const end = Math.min(position + length, storedBytes);
        if (end <= position) return Buffer.alloc(0);
        if (!window || position < window.start || end > window.start + window.bytes.length) {
          window = { start: position, bytes: await obj.read(position, Math.max(length, READ_WINDOW)) };
        }
        return window.bytes.subarray(position - window.start, end - window.start);
      },
      stream: (start, end) => Readable.from(start < storedBytes ? streamBody(obj, start, end) : [], { objectMode: false }),
      close: async () => {
        window = null;
      },
    };
  }
}

async function* streamBody(obj: S3Object, start: number, end: number | undefined): AsyncGenerator<Buffer> {
  yield* (await obj.body(start, end)) as AsyncIterable<Buffer>;
}
