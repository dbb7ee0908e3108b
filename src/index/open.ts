/**
 * Opens the register the config names: the embedded LMDB index under storage.dir, or the
 * PostgreSQL register several recorders share ([index] backend). The daemon and the CLI
 * both open it here, so they always agree on which one they use. The PostgreSQL client is
 * loaded only when the config names it (about 5 MB of memory an LMDB recorder never uses).
 */
import type { Config } from '../config/schema.js';
import { openIndex, type RecordingIndex } from './index.js';
import { indexUrl } from './postgres/url.js';
import type { JobLock } from '../retention/purge.js';

export interface Register {
  readonly index: RecordingIndex;
  /**
   * Keeps a retention purge pass to one node at a time, when several share the register;
   * absent for LMDB (one box).
   */
  readonly purgeLock?: JobLock;
}

export async function openRegister(c: Pick<Config, 'index' | 'storage' | 'cluster'>, opts: { onError?: (message: string) => void } = {}): Promise<Register> {
  if (c.index.backend === 'lmdb') return { index: await openIndex(c.storage.dir, { nodeId: c.cluster.node_id }) };
  const { openPostgresIndex } = await import('./postgres/open.js');
  const index = await openPostgresIndex({
    url: indexUrl(c.index),
    poolSize: c.index.pool_size,
    node: c.cluster.node_id,
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
  return { index, purgeLock: (fn) => index.purgeAlone(fn) };
}
