/**
 * The first half of writing a recording: its bytes go into a local staging file (sealed
 * chunk by chunk under a data key when given one), hashed on the way, and finish() fsyncs
 * it. Synchronous and free of any store object, so the encoder's worker thread does it
 * from the job's StagingArea. The staged file of a key has a fixed name, so a staged file
 * left by a crash is truncated by the next writer of the same recording, never trusted.
 * Staged files start with a dot: no store lists them.
 */
import { closeSync, createReadStream, fsyncSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ChunkSealer } from '../crypto/chunked.js';
import { checkKey, type AudioWriter, type StagedAudio, type StagingArea, type StagingWriter, type StoredAudio } from './audio-store.js';

/** The staged file of `key` in `area` (only src/storage uses it). */
export function stagedPath(area: StagingArea, key: string): string {
  return join(area.dir, `.${encodeURIComponent(checkKey(key))}.staged`);
}

/** A staging area in a local folder (created private to the daemon). */
export function localStaging(dir: string): StagingArea {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  return { kind: 'local', dir };
}

export function openStagedWriter(area: StagingArea, key: string, dataKey?: Uint8Array): StagingWriter {
  const path = stagedPath(area, key);
  mkdirSync(area.dir, { recursive: true, mode: 0o750 });
  const fd = openSync(path, 'w', 0o640);
  const sealer = dataKey ? new ChunkSealer(dataKey) : null;
  const hash = createHash('sha256');
  let state: 'open' | 'finished' | 'aborted' = 'open';
  let plain = 0;
  let stored = 0;
  let staged: StagedAudio | null = null;
  const writeAll = (b: Uint8Array): void => {
    hash.update(b);
    stored += b.length;
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off);
  };
  const close = (): void => {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  };
  try {
    if (sealer) writeAll(sealer.header);
  } catch (e) {
    close();
    throw e;
  }
  return {
    key,
    write(data) {
      if (state !== 'open') throw new Error('the audio writer is closed');
      plain += data.length;
      if (!sealer) return writeAll(data);
      for (const c of sealer.push(data)) writeAll(c);
    },
    finish() {
      if (staged) return staged;
      if (state !== 'open') throw new Error('the audio writer is closed');
      if (sealer) for (const c of sealer.finish()) writeAll(c);
      fsyncSync(fd);
      close();
      state = 'finished';
      staged = { key, bytes: plain, storedBytes: stored, sha256: hash.digest('hex'), encrypted: sealer !== null, area };
      return staged;
    },
    abort() {
      if (state === 'aborted') return;
      if (state === 'open') close();
      state = 'aborted';
      removeStaged(area, key);
    },
  };
}

/** Deletes a staged file; false when there was none. */
export function removeStaged(area: StagingArea, key: string): boolean {
  try {
    unlinkSync(stagedPath(area, key));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/**
 * A store's writer: staged in its staging area, committed by its own publish. An abort
 * before the commit drops the staged file, then runs the store's own clean-up.
 */
export function storeWriter(
  store: { readonly staging: StagingArea; publish(staged: StagedAudio): Promise<StoredAudio> },
  key: string,
  dataKey?: Uint8Array,
  onAbort?: () => void,
): AudioWriter {
  const staged = openStagedWriter(store.staging, key, dataKey);
  let committed = false;
  return {
    key,
    write: (data) => staged.write(data),
    finish: () => staged.finish(),
    commit: async () => {
      const stored = await store.publish(staged.finish());
      committed = true;
      return stored;
    },
    abort: () => {
      if (committed) return;
      staged.abort();
      onAbort?.();
    },
  };
}

/**
 * Checks a staged file against what its writer recorded when it finished it: the size and the
 * SHA-256 of every byte. Null when it matches; else why not (missing, cut short, altered).
 * A staged file is published again after a restart only when this passes.
 */
export async function verifyStaged(staged: StagedAudio): Promise<string | null> {
  const path = stagedPath(staged.area, staged.key);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'the staged file is gone';
    throw e;
  }
  if (size !== staged.storedBytes) return `the staged file has ${size} bytes, not the ${staged.storedBytes} written`;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex') === staged.sha256 ? null : 'the staged file\'s SHA-256 is not the one written';
}
