/**
 * Tests and the AudioStore: the staging area an encode job writes to and the staged file it
 * left (before any store publishes it), and short ways to store bytes or a local file and
 * to ask whether a key is stored.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { localStaging, stagedPath } from '../../src/storage/staging.js';
import { everyStored, type AudioStore, type StagedAudio, type StagingArea, type StoredAudio } from '../../src/storage/audio-store.js';

/** The staging area of a file-system store rooted at `dir` (where FsAudioStore stages). */
export function stagingIn(dir: string): StagingArea {
  return localStaging(join(dir, 'recordings', '.staging'));
}

/** The local file of a staged recording. */
export function stagedFile(r: { readonly staged: StagedAudio | null }): string {
  if (!r.staged) throw new Error('the encoder staged no recording');
  return stagedPath(r.staged.area, r.staged.key);
}

/** Stores `bytes` at `key` (encrypted under `dataKey` when given). */
export async function storeBytes(store: AudioStore, key: string, bytes: Uint8Array, dataKey?: Uint8Array): Promise<StoredAudio> {
  const w = store.create(key, dataKey);
  w.write(bytes);
  return w.commit();
}

/** Stores a local file's bytes at `key`. */
export function storeFile(store: AudioStore, key: string, path: string, dataKey?: Uint8Array): Promise<StoredAudio> {
  return storeBytes(store, key, readFileSync(path), dataKey);
}

/** Whether `key` is listed by the store. */
export async function isStored(store: AudioStore, key: string): Promise<boolean> {
  return (await storedSize(store, key)) !== null;
}

/** The stored bytes of `key` as the store lists them; null when it is not stored. */
export async function storedSize(store: AudioStore, key: string): Promise<number | null> {
  for await (const i of everyStored(store)) if (i.key === key) return i.storedBytes;
  return null;
}
