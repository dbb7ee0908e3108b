/**
 * Reads a whole spool file as a stream of records, in chunks, so memory does not grow with
 * the call's length: a SpoolFollower (follower.ts) read once to the end of the file. A record
 * cut short at the end (crash) ends the stream with `torn = true`.
 */
import { SpoolFollower, type RecordHandler } from './follower.js';
import { TallenneError } from '../errors.js';

export type { SpoolRecord } from './follower.js';

export interface SpoolReadResult {
  /** True when the file ended inside a record (the writer was killed) or at a damaged one. */
  torn: boolean;
  records: number;
}

const READ_BYTES = 256 * 1024;

/**
 * Calls `onRecord` for every complete record in file order. Throws TALLENNE_SPOOL_CORRUPT
 * for a file that is not a spool.
 */
export async function readSpool(path: string, onRecord: RecordHandler): Promise<SpoolReadResult> {
  const f = new SpoolFollower(path, { bufferBytes: READ_BYTES });
  try {
    const records = await f.read(onRecord);
    if (!f.isSpool) {
      if (f.partialBytes === 0) return { torn: true, records: 0 };
      throw new TallenneError('TALLENNE_SPOOL_CORRUPT', `${path}: not a spool file`);
    }
    return { torn: f.damaged || f.partialBytes > 0, records };
  } finally {
    await f.close();
  }
}
