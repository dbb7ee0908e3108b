/**
 * Encoder worker thread: takes one EncodeJob at a time from the pool and answers with the
 * result or with the error's code and message. A crash (an exception that escapes, or the
 * native code aborting) is seen by the pool as the thread's exit.
 */
import { parentPort } from 'node:worker_threads';
import { encodeSpool, type EncodeJob, type EncodeResult } from './encode-spool.js';
import { TallenneError } from '../errors.js';

export type WorkerRequest = { readonly seq: number; readonly job: EncodeJob };
export type WorkerReply =
  | { readonly seq: number; readonly ok: true; readonly result: EncodeResult }
  | { readonly seq: number; readonly ok: false; readonly code: string; readonly message: string };

const port = parentPort;
if (port) {
  port.on('message', (req: WorkerRequest) => {
    encodeSpool(req.job).then(
      (result) => port.postMessage({ seq: req.seq, ok: true, result } satisfies WorkerReply),
      (err: unknown) => {
        const code = err instanceof TallenneError ? err.code : 'TALLENNE_ENCODE_FAILED';
        const message = err instanceof Error ? err.message : String(err);
        port.postMessage({ seq: req.seq, ok: false, code, message } satisfies WorkerReply);
      },
    );
  });
}
