/**
 * Reads the daemon's recordings index from a test, through src/index (LMDB is safe to open
 * from a second process while the daemon writes). Used where the CLI's JSON does not show a
 * field a test checks (participants with their times, pauses, DTMF, group id).
 */
import { join } from 'node:path';
import { openIndex } from '../../src/index/index.js';
import type { RecordingEntry } from '../../src/types.js';

export async function storedEntries(dataDir: string): Promise<RecordingEntry[]> {
  const index = await openIndex(dataDir);
  try {
    return (await index.list({}, { limit: 10_000 })).items;
  } finally {
    await index.close();
  }
}

export async function storedEntry(dataDir: string, id: string): Promise<RecordingEntry> {
  const index = await openIndex(dataDir);
  try {
    const e = await index.get(id);
    if (!e) throw new Error(`recording ${id} is not in the index`);
    return e;
  } finally {
    await index.close();
  }
}

export function dataDirOf(daemonDir: string): string {
  return join(daemonDir, 'data');
}
