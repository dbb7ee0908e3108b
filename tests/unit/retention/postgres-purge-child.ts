/**
 * Spawned by postgres-purge.test.ts: a node ("c") running a purge pass on the shared
 * PostgreSQL register <url> over storage <dir> at time <nowMs>, under the register's purge
 * lock, that SIGKILLs itself right after the intent step of its first destruction.
 */
import { openPostgresIndex } from '../../../src/index/postgres/open.js';
import { FsAudioStore } from '../../../src/storage/fs-store.js';
import { Purger } from '../../../src/retention/purge.js';

const [url, dir, nowText] = process.argv.slice(2) as [string, string, string];
const now = Number(nowText);
const index = await openPostgresIndex({ url, poolSize: 2, node: 'c', now: () => now });
const purger = new Purger({ index, store: new FsAudioStore(dir), now: () => now, lock: (fn) => index.purgeAlone(fn) });
await purger.runOnce({
  hooks: {
    afterStep(s) {
      if (s === 'intent') process.kill(process.pid, 'SIGKILL');
    },
  },
});
// Reaching here means no destruction began: the test sees a normal exit and fails.
await index.close();
