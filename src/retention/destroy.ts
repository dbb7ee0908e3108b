/**
 * Crash-safe destruction of a recording's audio, or of the whole recording, in three
 * committed steps:
 *   1. intent: the index records what is about to go (and who asked, why) in a committed
 *      transaction, but only if it is still due (no hold placed meanwhile by another process).
 *      The same transaction drops the entry's wrapped data key: an encrypted file is
 *      unreadable from here on (crypto-shredding), before and whether or not the file goes;
 *   2. file: the audio file is deleted through the AudioStore (a missing file is fine);
 *   3. index: the entry is marked audio-purged or removed, the intent dropped and the audit
 *      entry appended, all in one transaction.
 * A process killed anywhere leaves either nothing done, or an intent that the next run
 * completes (steps 2 and 3 are idempotent). The index therefore never points at a file that
 * is gone without an intent saying so, and no file outlives its entry without one either.
 */
import type { AudioStore } from '../storage/audio-store.js';
import type { DestroyIntent, IntentCondition, RecordingIndex } from '../index/index.js';
import type { RecordingEntry } from '../types.js';
import { TallenneError } from '../errors.js';

/** Points a test can stop at (it kills the process there); never used in production. */
export type DestroyStep = 'intent' | 'file-delete' | 'index-commit';

export interface DestroyHooks {
  afterStep?(step: DestroyStep, id: string): void;
}

export interface DestroyRequest {
  kind: 'audio' | 'recording';
  actor: string;
  action: string;
  reason?: string;
  details?: Record<string, string | number | boolean>;
  condition?: IntentCondition;
}

export interface DestroyResult {
  /** False when the recording was gone or no longer due. */
  done: boolean;
  fileDeleted: boolean;
}

export async function destroyRecording(
  index: RecordingIndex,
  store: AudioStore,
  entry: RecordingEntry,
  req: DestroyRequest,
  now: () => number,
  hooks: DestroyHooks = {},
): Promise<DestroyResult> {
  const intent: DestroyIntent = {
    kind: req.kind,
    at: new Date(now()).toISOString(),
    actor: req.actor,
    action: req.action,
    ...(entry.audioPurgedAt === undefined && entry.file ? { file: entry.file } : {}),
    ...(req.reason !== undefined ? { reason: req.reason } : {}),
    details: { ...(entry.retention ? { policy: entry.retention.policy } : {}), ...req.details },
  };
  if (!(await index.setIntent(entry.id, intent, req.condition))) return { done: false, fileDeleted: false };
  hooks.afterStep?.('intent', entry.id);
  return completeIntent(index, store, entry.id, intent, now, hooks, false);
}

/** Steps 2 and 3 for an intent, either just recorded or found pending after a crash. */
export async function completeIntent(
  index: RecordingIndex,
  store: AudioStore,
  id: string,
  intent: DestroyIntent,
  now: () => number,
  hooks: DestroyHooks = {},
  resumed = true,
): Promise<DestroyResult> {
  const fileDeleted = intent.file !== undefined ? await store.remove(intent.file) : false;
  hooks.afterStep?.('file-delete', id);
  const audit = {
    actor: intent.actor,
    action: intent.action,
    recordingId: id,
    ...(intent.reason !== undefined ? { reason: intent.reason } : {}),
    details: { ...intent.details, kind: intent.kind, fileDeleted, ...(resumed ? { resumed: true } : {}) },
  };
  if (intent.kind === 'audio' && index.get(id) !== undefined) {
    const at = new Date(now()).toISOString();
    try {
      await index.update(id, (e) => ({ ...e, audioPurgedAt: e.audioPurgedAt ?? at, fileBytes: 0, fileSha256: undefined, dataKey: undefined }), { clearIntent: true, audit });
    } catch (e) {
      // Removed by another process since the check: nothing left to mark, only the intent.
      if (!(e instanceof TallenneError && e.code === 'TALLENNE_NOT_FOUND')) throw e;
      await index.remove(id);
    }
  } else {
    await index.remove(id, { audit });
  }
  hooks.afterStep?.('index-commit', id);
  return { done: true, fileDeleted };
}
