/**
 * Where a recording's Ogg bytes go while it is encoded: an AudioStore writer for its key
 * (sealed chunk by chunk under the recording's data key when the job carries one), written
 * progressively as pages fill, then committed (fsync + atomic rename) at the end. A temp file
 * left by a crash is never trusted: the next encode of the same spool opens the same temp
 * path and truncates it.
 */
import { LocalAudioStore } from '../storage/audio-store.js';
import type { PageWriter } from './ogg.js';

export interface RecordingOutput {
  /** What the OggOpusWriter writes its pages to. */
  readonly sink: PageWriter;
  /** Seals the end and commits the file; returns its AudioStore key and plaintext size. */
  commit(): { file: string; bytes: number };
  /** Removes the partial file (a failed or abandoned encode). */
  discard(): void;
}

export function openRecordingOutput(storageDir: string, id: string, answeredAt: number, dataKey?: Uint8Array): RecordingOutput {
  const store = new LocalAudioStore(storageDir);
  const key = store.keyFor(id, answeredAt);
  const writer = store.createWriter(key, dataKey);
  return {
    sink: writer,
    commit: () => ({ file: key, bytes: writer.commit() }),
    discard: () => writer.abort(),
  };
}
