/** Spawned by multiprocess.test.ts: writes recordings and audit entries into <storageDir> as a second process. */
import { openIndex } from '../../../src/index/index.js';
import { makeEntry } from './entry.js';

const [dir, prefix, countText] = process.argv.slice(2) as [string, string, string];
const index = await openIndex(dir);
for (let i = 0; i < Number(countText); i++) {
  await index.put(makeEntry(`${prefix}${i}`, 1_700_000_000_000 + i, { agentId: prefix }), {
    audit: { actor: prefix, action: 'put', recordingId: `${prefix}${i}` },
  });
}
await index.close();
