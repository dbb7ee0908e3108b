/**
 * The one seam for audio. Everything that writes, reads, lists or deletes a recording's
 * audio goes through an AudioStore, and no local path comes out of it: a recording is named
 * by its key ("recordings/2026/11/22/ID.opus", the same for every backend) and read as a
 * stream. A tool that needs a file on disk gets a private copy through local-copy.ts.
 *
 * Writing is two steps, so that an object store fits as well as the file system:
 *   1. stage: a writer (staging.ts) writes the bytes into a local staging file, sealing them
 *      chunk by chunk when given a data key, and `finish()` fsyncs it. This is synchronous
 *      and needs no store object, so an encoder worker thread does it from the job's
 *      StagingArea;
 *   2. publish: the store makes the staged file the stored object (a rename on the file
 *      system, an upload to an object store) and answers its size and checksum. This is
 *      asynchronous and runs where the finaliser runs. A staged file that could not be
 *      published stays where it is and can be published again later.
 *
 * Encryption at rest: a reader gets the recording's reference (its key, id and the wrapped
 * data key from its index entry) and always reads plaintext, whole or by byte range, mapped
 * onto the chunks that hold it (sealed-read.ts). A recording without a wrapped key is a plain
 * file (written with encryption off, or before it existed): both kinds are read side by side.
 * Sizes given out for a recording are plaintext sizes unless named `storedBytes`.
 */
import type { Readable } from 'node:stream';
import type { WrappedKey } from '../crypto/keyring.js';

/** What a reader needs of a recording: its audio key and, when encrypted, its wrapped data key. */
export interface AudioRef {
  readonly id: string;
  /** The audio key (the index entry's `file`). */
  readonly file: string;
  readonly dataKey?: WrappedKey;
  /**
   * The plaintext size committed (the index entry's). With it, a final chunk of exactly the
   * length it should have that fails authentication is refused as damaged or tampered;
   * without it, or at any other length, the stored object is taken as cut short.
   */
  readonly fileBytes?: number;
}

/** Plaintext bytes start..end, both inclusive (as in an HTTP Range). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Where new recordings are staged before their store publishes them. Plain data, so it can
 * be sent to an encoder worker thread with the job; only src/storage reads what is inside.
 */
export interface StagingArea {
  readonly kind: 'local';
  readonly dir: string;
}

/** A recording staged and fsynced, ready to publish. Plain data (it comes back from a worker thread). */
export interface StagedAudio {
  readonly key: string;
  /** Plaintext bytes written. */
  readonly bytes: number;
  /** Bytes of the staged object (ciphertext when encrypted). */
  readonly storedBytes: number;
  /** SHA-256 (hex) of the staged object's bytes, as they will be stored. */
  readonly sha256: string;
  readonly encrypted: boolean;
  /** The staging area it lies in. */
  readonly area: StagingArea;
}

/** A recording as stored: what its index entry records. */
export interface StoredAudio {
  readonly key: string;
  /** Plaintext bytes a reader gets. */
  readonly bytes: number;
  /** Bytes of the stored object. */
  readonly storedBytes: number;
  /** SHA-256 (hex) of the stored object's bytes. */
  readonly sha256: string;
}

/** The staging half of a writer: synchronous, usable on any thread (staging.ts). */
export interface StagingWriter {
  readonly key: string;
  write(data: Uint8Array): void;
  /** Seals the end and fsyncs the staged file. Idempotent: a second call answers the same. */
  finish(): StagedAudio;
  /** Drops the staged file. Idempotent; a no-op once committed. */
  abort(): void;
}

/** A new recording being written through a store: staged, then published by commit(). */
export interface AudioWriter extends StagingWriter {
  /** finish(), then the store publishes it. On failure the staged file stays until abort(). */
  commit(): Promise<StoredAudio>;
}

export interface AudioInfo {
  /** Plaintext bytes a reader gets. */
  readonly bytes: number;
  readonly encrypted: boolean;
  /** False when an encrypted object lacks its final chunk (cut short): it reads up to its last whole chunk. */
  readonly complete: boolean;
}

export interface AudioListing {
  readonly key: string;
  readonly storedBytes: number;
}

/** One page of stored keys in ascending order; `cursor` continues after the last one. */
export interface AudioPage {
  readonly items: readonly AudioListing[];
  readonly cursor?: string;
}

export interface StoreUsage {
  /** Bytes the stored audio takes (only when asked for). */
  readonly usedBytes?: number;
  /** Free bytes and size of the volume holding the audio, for a backend that has one. */
  readonly freeBytes?: number;
  readonly volumeBytes?: number;
}

export interface AudioStore {
  /** Where writers stage new recordings (see StagingArea). */
  readonly staging: StagingArea;
  /**
   * A writer for a new recording at `key`: encrypted under `dataKey` (the raw 256-bit key;
   * its wrapped form goes into the index entry), or plain without one.
   */
  create(key: string, dataKey?: Uint8Array): AudioWriter;
  /** Makes a staged recording the stored object at its key (replacing one there). */
  publish(staged: StagedAudio): Promise<StoredAudio>;
  /**
   * The recording's audio as plaintext, whole or one byte range. Rejects with
   * TALLENNE_NOT_FOUND when it is gone, and with TALLENNE_DECRYPT_FAILED or
   * TALLENNE_KEY_UNKNOWN when its key does not open it; a damaged chunk later on errors the stream.
   */
  open(ref: AudioRef, range?: ByteRange): Promise<Readable>;
  /** Plaintext size and state of a recording's audio; null when it is gone. Rejects on a key that does not open it. */
  stat(ref: AudioRef): Promise<AudioInfo | null>;
  /** Deletes a stored recording; true when it existed. */
  remove(key: string): Promise<boolean>;
  /** Stored keys in ascending order, a page at a time (staged files are not listed). */
  list(page: { readonly cursor?: string; readonly limit: number }): Promise<AudioPage>;
  /**
   * Free and volume bytes of the volume holding the audio (cheap; absent for a backend
   * without a volume). With `used`, also the bytes the stored audio takes: a walk or a
   * listing, which the store caches; ask rarely.
   */
  usage(opts?: { readonly used?: boolean }): Promise<StoreUsage>;
  /** Reads refused because a chunk or a wrapped key did not authenticate, or its master key is gone. */
  readonly decryptFailures: number;
}

/** Every stored recording, in key order, read a page at a time. */
export async function* everyStored(store: Pick<AudioStore, 'list'>, pageSize = 1000): AsyncGenerator<AudioListing> {
  let cursor: string | undefined;
  do {
    const page = await store.list(cursor === undefined ? { limit: pageSize } : { cursor, limit: pageSize });
    yield* page.items;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/** The associated data a recording's data key is wrapped with. */
export function dataKeyContext(recordingId: string): string {
  return `recording:${recordingId}`;
}

/** Key under which the recording `id` answered at `answeredAt` (epoch ms) is stored. */
export function recordingKey(id: string, answeredAt: number): string {
  const d = new Date(answeredAt);
  const yyyy = String(d.getUTCFullYear());
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  return `recordings/${yyyy}/${mm}/${dd}/${id}.opus`;
}

/**
 * A key is `recordings/…/NAME.opus`, relative, without `.`, `..` or empty parts: the same
 * rule for every backend (a file-system store keeps other folders beside `recordings/`).
 */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (parts.length < 2 || parts[0] !== 'recordings' || !key.endsWith('.opus') || parts.some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) {
    throw new Error(`bad audio key ${JSON.stringify(key)}`);
  }
  return key;
}
