/**
 * Spawned by rotation.test.ts: runs `keys rotate` over <storageDir> with the key file
 * <keyFile> in batches of 2, and SIGKILLs itself at <point> ("mark", "key", or "batch:N"
 * after the N-th committed batch), the way a power cut would stop it.
 */
import { openIndex } from '../../../src/index/index.js';
import { Keyring } from '../../../src/crypto/keyring.js';
import { rotateKeys } from '../../../src/crypto/rotation.js';
import { spoolDirOf } from '../../../src/spool/format.js';

const [dir, keyFile, point] = process.argv.slice(2) as [string, string, string];
const index = await openIndex(dir);
const die = (): never => process.kill(process.pid, 'SIGKILL') as never;
let batches = 0;
await rotateKeys(index, Keyring.open({ master_key_file: keyFile }, { create: false }), {
  actor: 'test:rotate',
  spoolDir: spoolDirOf(dir),
  batch: 2,
  hooks: {
    afterMark: () => (point === 'mark' ? die() : undefined),
    afterKeyAdded: () => (point === 'key' ? die() : undefined),
    afterBatch: () => (point === `batch:${++batches}` ? die() : undefined),
  },
});
// Reaching here means the point never came: the test sees a normal exit and fails.
await index.close();
