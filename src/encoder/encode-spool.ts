/**
 * One call's whole spool → its Ogg Opus recording, in one go: the CallEncoder (call-encoder.ts)
 * that follows live calls, run to the end of a closed spool. Recovery after a crash and the
 * retry of a failed finalisation take this way; a call the encoder followed while it was
 * live only has its tail left at hang-up. One pipeline either way.
 *
 * The file is staged in the job's StagingArea (encrypted when the job carries a data key) and
 * fsynced; the finaliser has the AudioStore publish it, and deletes the spool once the index
 * entry is durable.
 */
import type { DtmfEvent, LegStats, PauseInterval, RecordingMeta, RecordingStatus } from '../types.js';
import { CallEncoder, type CallEncoderOptions } from './call-encoder.js';
import type { StagedAudio, StagingArea } from '../storage/audio-store.js';

export interface EncodeJob {
  spoolPath: string;
  /** Where the recording is staged (the AudioStore's StagingArea). */
  staging: StagingArea;
  id: string;
  complexity: number;
  bitrate: number;
  skipSilence: boolean;
  maskDtmf: boolean;
  /** The recording's raw data key: the file is encrypted under it (its wrapped form is the Finaliser's). Absent: a plain file. */
  dataKey?: Uint8Array;
  /** A sealed spool's data key, unwrapped by the finaliser (absent for a plain spool). */
  spoolKey?: Uint8Array;
}

export interface EncodeResult {
  meta: RecordingMeta;
  /** The staged recording, for the AudioStore to publish (null from an encoder whose output keeps nothing: a live listen). */
  staged: StagedAudio | null;
  answeredAt: number;
  endedAt: number;
  durationMs: number;
  status: RecordingStatus;
  endReason: string;
  legs: LegStats[];
  pauses: PauseInterval[];
  dtmf: DtmfEvent[];
  sampleRate: number;
  channels: number;
  audioMs: number;
  encodeCpuMs: number;
  framesEncoded: number;
  framesSkipped: number;
  /** Sealed spool records that failed authentication and were left out. */
  spoolRecordsRejected: number;
}

export { END_REASON_NO_END_RECORD } from './call-encoder.js';

/** A whole spool is read in big chunks; a live call's follower keeps a small buffer. */
const WHOLE_SPOOL_READ_BYTES = 256 * 1024;

/** A CallEncoder for a spool read from its start in one go (a live call keeps a smaller buffer). */
export function wholeSpoolEncoder(job: EncodeJob, opts: Pick<CallEncoderOptions, 'blockingReads'> = {}): CallEncoder {
  return new CallEncoder(job, { ...opts, bufferBytes: WHOLE_SPOOL_READ_BYTES });
}

/** Encodes a closed spool from its first record to its last. */
export async function encodeSpool(job: EncodeJob): Promise<EncodeResult> {
  return wholeSpoolEncoder(job).finish();
}
