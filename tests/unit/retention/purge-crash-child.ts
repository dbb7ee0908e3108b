/**
 * Spawned by purge-crash.test.ts: runs one purge over <storageDir> at time <nowMs> and
 * SIGKILLs itself right after <step>, the way a power cut or an OOM kill would stop it.
 */
import { openIndex } from '../../../src/index/index.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { Purger } from '../../../src/retention/purge.js';
import type { DestroyStep } from '../../../src/retention/destroy.js';

const [dir, nowText, step] = process.argv.slice(2) as [string, string, DestroyStep];
const now = Number(nowText);
const index = await openIndex(dir, { now: () => now });
const purger = new Purger({ index, store: new FsAudioStore(dir), now: () => now });
await purger.runOnce({
  hooks: {
    afterStep(s) {
      if (s === step) process.kill(process.pid, 'SIGKILL');
    },
  },
});
// Reaching here means the step never came: the test sees a normal exit and fails.
await index.close();
