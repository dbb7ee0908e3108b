/** The register conformance suite against the embedded LMDB index, one fresh environment per test. */
import { rmSync } from 'node:fs';
import { openIndex } from '../../src/index/index.js';
import { tempDir } from '../support/cleanup.js';
import { describeIndexConformance } from './index-conformance.js';

describeIndexConformance('lmdb', async ({ nodeId }) => {
  const dir = tempDir('conf-lmdb');
  const index = await openIndex(dir, { nodeId });
  return {
    index,
    async close() {
      await index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
