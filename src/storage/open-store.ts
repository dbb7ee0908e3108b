/**
 * The AudioStore a config names: files under `storage.dir` ("fs", the default) or an S3
 * bucket ("s3", staging in `storage.dir/outbox`). The daemon and the CLI open their store
 * here; only the daemon publishes, so only its outbox retries.
 *
 * The S3 store, and with it the AWS SDK, is loaded only when the config names it: the SDK
 * costs a recorder on local files about 8 MB of memory it would never use.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { s3CredentialsFromEnvironment } from '../config/load.js';
import type { KeyWrapper } from '../crypto/keyring.js';
import type { AudioStore } from './audio-store.js';
import { FsAudioStore } from './fs-store.js';
import type { OutboxOptions } from './outbox.js';
import { loadS3Credentials } from './s3-credentials.js';

export interface OpenedStore {
  readonly store: AudioStore;
  /** The S3 store's outbox figures; null for local files. */
  readonly outbox: { readonly waiting: number; readonly failures: number; readonly lastError: string | null } | null;
  /** No more upload retries (stopping): recordings waiting are left to the next start. */
  stopRetrying(): void;
  close(): void;
}

export async function openAudioStore(c: Config, keys: KeyWrapper | null, retry?: OutboxOptions): Promise<OpenedStore> {
  if (c.storage.backend === 'fs') {
    return { store: new FsAudioStore(c.storage.dir, { keys }), outbox: null, stopRetrying: () => undefined, close: () => undefined };
  }
  const s = c.storage;
  const { S3AudioStore } = await import('./s3-audio-store.js');
  const store = new S3AudioStore({
    location: { bucket: s.bucket!, prefix: s.prefix, region: s.region, forcePathStyle: s.force_path_style, ...(s.endpoint ? { endpoint: s.endpoint } : {}) },
    credentials: loadS3Credentials(s.credentials_file, s3CredentialsFromEnvironment()),
    outboxDir: join(s.dir, 'outbox'),
    keys,
    ...(retry ? { retry } : {}),
  });
  return { store, outbox: store.outbox, stopRetrying: () => store.stopRetrying(), close: () => store.close() };
}
