/**
 * Where a recording's Ogg bytes go while it is encoded: a staging writer for its key, from
 * the job's StagingArea (sealed chunk by chunk under the recording's data key when the job
 * carries one), written progressively as pages fill, then finished (fsynced) at the end. The
 * store publishes the staged recording where the finaliser runs. A staged file left by a
 * crash is never trusted: the next encode of the same spool stages the same key afresh.
 */
import { openStagedWriter } from '../storage/staging.js';
import { recordingKey, type StagedAudio, type StagingArea } from '../storage/audio-store.js';
import type { PageWriter } from './ogg.js';

export interface RecordingOutput {
  /** What the OggOpusWriter writes its pages to. */
  readonly sink: PageWriter;
  /**
   * Seals the end and fsyncs the staged recording, ready for the store to publish; null from
   * an output that keeps nothing (a live listener's).
   */
  finish(): StagedAudio | null;
  /** Removes the partial file (a failed or abandoned encode). */
  discard(): void;
}

export function openRecordingOutput(staging: StagingArea, id: string, answeredAt: number, dataKey?: Uint8Array): RecordingOutput {
  const writer = openStagedWriter(staging, recordingKey(id, answeredAt), dataKey);
  return {
    sink: writer,
    finish: () => writer.finish(),
    discard: () => writer.abort(),
  };
}
