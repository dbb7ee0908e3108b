/**
 * Encoder worker thread entry: lowers its own scheduling priority and serves the pool's
 * requests with an EncoderThread (encoder-thread.ts). A crash (an exception that escapes, or
 * the native code aborting) is seen by the pool as the thread's exit.
 */
import { parentPort } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { EncoderThread, type WorkerReply, type WorkerRequest } from './encoder-thread.js';

export type { WorkerReply, WorkerRequest } from './encoder-thread.js';

/**
 * Nice value of an encoder thread. Encoding can wait (the spool holds the call), capture
 * cannot (a datagram not read in time is gone), so when the box is busy the kernel should
 * run the capture thread first; when capture idles the encoders still get every free cycle.
 * The lowest priority there is: with live encoding the encoders always have work once the
 * calls outgrow them, and at nice 10 they still took enough of the cores at 1,000 calls for
 * the capture to fall behind in bursts.
 */
export const ENCODER_NICE = 19;

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
  const thread = new EncoderThread((reply: WorkerReply, transfer?: ArrayBuffer[]) => port.postMessage(reply, transfer));
  port.on('message', (req: WorkerRequest) => thread.handle(req));
}
