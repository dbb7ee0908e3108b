/**
 * Encoder worker thread: takes one EncodeJob at a time from the pool and answers with the
 * result or with the error's code and message. A crash (an exception that escapes, or the
 * native code aborting) is seen by the pool as the thread's exit. A sealed spool's key, which
 * comes with the job, is overwritten once the job is done.
 */
import { parentPort } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { encodeSpool, type EncodeJob, type EncodeResult } from './encode-spool.js';
import { TallenneError } from '../errors.js';

export type WorkerRequest = { readonly seq: number; readonly job: EncodeJob };
export type WorkerReply =
  | { readonly seq: number; readonly ok: true; readonly result: EncodeResult }
  | { readonly seq: number; readonly ok: false; readonly code: string; readonly message: string };

/**
 * Nice value of an encoder thread. Encoding can wait (the spool holds the call), capture
 * cannot (a datagram not read in time is gone), so when the box is busy the kernel should
 * run the capture thread first; when capture idles the encoders still get every free cycle.
 */
export const ENCODER_NICE = 10;

/** Lowers this thread's scheduling priority (Linux: setpriority on the thread's own id). */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, ENCODER_NICE);
  } catch {
    // Not Linux, or not permitted: the thread runs at the process's priority.
  }
}

const port = parentPort;
if (port) {
  lowerThreadPriority();
  port.on('message', (req: WorkerRequest) => {
    encodeSpool(req.job).finally(() => req.job.spoolKey?.fill(0)).then(
      (result) => port.postMessage({ seq: req.seq, ok: true, result } satisfies WorkerReply),
      (err: unknown) => {
        const code = err instanceof TallenneError ? err.code : 'TALLENNE_ENCODE_FAILED';
        const message = err instanceof Error ? err.message : String(err);
        port.postMessage({ seq: req.seq, ok: false, code, message } satisfies WorkerReply);
      },
    );
  });
}
