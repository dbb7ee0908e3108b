// An encoder worker slowed down on purpose (tests of an overloaded encoder): the real
// EncoderThread from the build, with a busy wait before each call's step. The delay comes in
// workerData-free form through the file name's query (?delay=MS).
import { parentPort } from 'node:worker_threads';
import { EncoderThread } from '../../dist/encoder/encoder-thread.js';

const delayMs = Number(new URL(import.meta.url).searchParams.get('delay') ?? '100');
const thread = new EncoderThread((reply) => parentPort.postMessage(reply), {
  beforeStep() {
    const until = Date.now() + delayMs;
    while (Date.now() < until);
  },
});
parentPort.on('message', (req) => thread.handle(req));
