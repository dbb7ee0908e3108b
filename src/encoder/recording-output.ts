/**
 * Where a recording's Ogg bytes go while it is encoded: the AudioStore's temp path for its
 * key, written progressively as pages fill, then committed (fsync + atomic rename) at the
 * end. A temp file left by a crash is never trusted: the next encode of the same spool opens
 * the same temp path and truncates it.
 */
import { closeSync, openSync, unlinkSync } from 'node:fs';
import { LocalAudioStore } from '../storage/audio-store.js';

export interface RecordingOutput {
  /** The file descriptor the OggOpusWriter writes its pages to. */
  readonly fd: number;
  /** Closes and commits the file; returns its AudioStore key and size. */
  commit(): { file: string; bytes: number };
  /** Closes and removes the partial file (a failed or abandoned encode). */
  discard(): void;
}

export function openRecordingOutput(storageDir: string, id: string, answeredAt: number): RecordingOutput {
  const store = new LocalAudioStore(storageDir);
  const key = store.keyFor(id, answeredAt);
  const temp = store.tempPathFor(key);
  const fd = openSync(temp, 'w', 0o640);
  let open = true;
  const close = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    fd,
    commit() {
      close();
      return { file: key, bytes: store.commit(temp, key) };
    },
    discard() {
      close();
      try {
        unlinkSync(temp);
      } catch {
        // Already gone (or committed): nothing to clean.
      }
    },
  };
}
