/**
 * The finaliser's note of a recording that is encoded and staged but not yet registered:
 * `<id>.staged.json` beside its spool. It holds the encode result (what the index entry is
 * made of, with the staged file's size and SHA-256) and the wrapped data key of an encrypted
 * recording. A finalisation cut short after the encode (a restart while the upload waited in
 * the outbox, a failed register write) takes the note up instead of encoding the whole spool
 * again, once the staged file passes its check (src/storage/staging.ts verifyStaged).
 *
 * The note lives and dies with the spool: written after the encode, removed just before the
 * spool is deleted. It names no person: the recording id only, like the spool.
 */
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EncodeResult } from '../encoder/encode-spool.js';
import type { WrappedKey } from '../crypto/keyring.js';
import type { StagedAudio, StagingArea } from '../storage/audio-store.js';

const VERSION = 1;

export interface StagedNote {
  /** The encode's result, its staged recording in the staging area the note is read for. */
  readonly result: EncodeResult & { staged: StagedAudio };
  readonly wrapped?: WrappedKey;
}

function notePath(spoolDir: string, id: string): string {
  return join(spoolDir, `${id}.staged.json`);
}

/** Writes the note of a staged recording (replacing an older one), whole or not at all. */
export async function writeStagedNote(spoolDir: string, id: string, note: StagedNote): Promise<void> {
  const { area: _area, ...staged } = note.result.staged;
  const path = notePath(spoolDir, id);
  await writeFile(`${path}.tmp`, JSON.stringify({ version: VERSION, result: { ...note.result, staged }, ...(note.wrapped ? { wrapped: note.wrapped } : {}) }), { mode: 0o640 });
  await rename(`${path}.tmp`, path);
}

/**
 * The note of recording `id`, its staged recording placed in `area` (the staging area of
 * the store this process publishes to). Null when there is none, or one this version cannot
 * read (cut short, foreign): the spool is then encoded again.
 */
export async function readStagedNote(spoolDir: string, id: string, area: StagingArea): Promise<StagedNote | 'unreadable' | null> {
  let text: string;
  try {
    text = await readFile(notePath(spoolDir, id), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const raw = JSON.parse(text) as { version?: unknown; result?: EncodeResult; wrapped?: WrappedKey };
    const staged = raw.result?.staged;
    if (raw.version !== VERSION || !raw.result || !staged || typeof staged.key !== 'string' || typeof staged.sha256 !== 'string' || !Number.isSafeInteger(staged.storedBytes) || staged.encrypted !== (raw.wrapped !== undefined) || raw.result.meta?.id !== id) return 'unreadable';
    return { result: { ...raw.result, staged: { ...staged, area } }, ...(raw.wrapped ? { wrapped: raw.wrapped } : {}) };
  } catch {
    return 'unreadable';
  }
}

/** Removes the note of recording `id` (its recording is registered, or it is not to be trusted). */
export async function removeStagedNote(spoolDir: string, id: string): Promise<void> {
  for (const p of [notePath(spoolDir, id), `${notePath(spoolDir, id)}.tmp`]) {
    await unlink(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}
