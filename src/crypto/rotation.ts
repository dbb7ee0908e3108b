/**
 * Master key rotation and retirement over the register.
 *
 * `rotateKeys` adds a new master key and re-wraps every recording's data key under it. The
 * audio files are not touched: only the small wrapped keys in the index change. It is
 * crash-safe and resumable:
 *   1. a rotation mark naming the target key id is committed in the index (audited) first;
 *   2. the key is added to the key file (atomic rename), unless it is there already;
 *   3. data keys are re-wrapped in batches, one committed transaction each; an entry is
 *      re-wrapped only while it is still under its old key, so a batch repeated after a
 *      crash changes nothing twice;
 *   4. the mark is removed (audited with the count).
 * A run killed anywhere is finished by the next `tallenne keys rotate`, which finds the mark
 * and resumes towards the same key instead of adding another. Recordings stored by the
 * daemon meanwhile are caught: the daemon wraps under the current key as soon as the key
 * file changes, and the loop runs until no entry is left under an older key.
 *
 * `retireKey` removes an old key from the key file, refusing while any recording still uses
 * it (TALLENNE_KEY_IN_USE).
 */
import { TallenneError } from '../errors.js';
import type { RecordingIndex } from '../index/index.js';
import { dataKeyContext } from '../storage/audio-store.js';
import { newKeyId, type Keyring, type WrappedKey } from './keyring.js';

export const ROTATION_MARK = 'keyRotation';
const BATCH = 200;

export interface RotationMark {
  readonly to: string;
  readonly startedAt: string;
  readonly actor: string;
}

/** Points a test can stop at (it kills the process there); never used in production. */
export interface RotationHooks {
  afterMark?(to: string): void;
  afterKeyAdded?(to: string): void;
  afterBatch?(rewrapped: number): void;
}

export interface KeyUsage {
  readonly keyId: string;
  readonly recordings: number;
  /** False for an id the key file no longer holds (its recordings cannot be read). */
  readonly held: boolean;
  readonly current: boolean;
}

export interface RotationReport {
  readonly to: string;
  /** True when this run finished a rotation an earlier run had begun. */
  readonly resumed: boolean;
  readonly rewrapped: number;
  /** Recordings whose data key could not be unwrapped (master key missing, or damaged). */
  readonly failed: ReadonlyArray<{ id: string; code: string }>;
  readonly usage: readonly KeyUsage[];
}

/** Every master key held or still named by a recording, with how many recordings it wraps. */
export async function keyUsage(index: RecordingIndex, keyring: Keyring): Promise<KeyUsage[]> {
  const counts = new Map((await index.dataKeyUsage()).map((u) => [u.keyId, u.recordings]));
  const held = keyring.keyIds();
  const current = keyring.currentKeyId;
  const ids = [...held, ...[...counts.keys()].filter((k) => !held.includes(k)).sort()];
  return ids.map((keyId) => ({ keyId, recordings: counts.get(keyId) ?? 0, held: held.includes(keyId), current: keyId === current }));
}

export async function rotateKeys(
  index: RecordingIndex,
  keyring: Keyring,
  opts: { actor: string; hooks?: RotationHooks; now?: () => number; batch?: number },
): Promise<RotationReport> {
  const hooks = opts.hooks ?? {};
  const now = opts.now ?? Date.now;
  let mark = await index.getMark<RotationMark>(ROTATION_MARK);
  const resumed = mark !== undefined;
  if (mark === undefined) {
    mark = { to: newKeyId(new Date(now())), startedAt: new Date(now()).toISOString(), actor: opts.actor };
    await index.setMark(ROTATION_MARK, mark, { audit: { actor: opts.actor, action: 'keys-rotate-start', details: { to: mark.to } } });
  } else {
    await index.audit.append({ actor: opts.actor, action: 'keys-rotate-resume', details: { to: mark.to, startedBy: mark.actor, startedAt: mark.startedAt } });
  }
  const to = mark.to;
  hooks.afterMark?.(to);
  if (!keyring.has(to)) keyring.addKey(to);
  if (keyring.currentKeyId !== to) {
    throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `the rotation in progress is towards master key ${to}, but the key file's current key is ${keyring.currentKeyId}; restore the key file or retire the newer key`);
  }
  hooks.afterKeyAdded?.(to);

  let rewrapped = 0;
  const failed: Array<{ id: string; code: string }> = [];
  const skipped = new Set<string>();
  for (;;) {
    const old = (await index.dataKeyUsage()).filter((u) => u.keyId !== to);
    let progressed = false;
    for (const { keyId } of old) {
      const batch = (await index.wrappedUnder(keyId, opts.batch ?? BATCH + skipped.size)).filter((e) => !skipped.has(e.id));
      const items: Array<{ id: string; fromKeyId: string; wrapped: WrappedKey }> = [];
      for (const e of batch.slice(0, opts.batch ?? BATCH)) {
        try {
          const ctx = dataKeyContext(e.id);
          items.push({ id: e.id, fromKeyId: keyId, wrapped: keyring.wrap(keyring.unwrap(e.dataKey!, ctx), ctx) });
        } catch (err) {
          skipped.add(e.id);
          failed.push({ id: e.id, code: err instanceof TallenneError ? err.code : 'UNKNOWN' });
        }
      }
      if (items.length > 0 || batch.length > 0) progressed = true;
      if (items.length === 0) continue;
      rewrapped += await index.rewrapDataKeys(items);
      hooks.afterBatch?.(rewrapped);
    }
    if (!progressed) break;
  }

  await index.setMark(ROTATION_MARK, undefined, {
    audit: { actor: opts.actor, action: 'keys-rotate-done', details: { to, rewrapped, failed: failed.length, ...(resumed ? { resumed: true } : {}) } },
  });
  return { to, resumed, rewrapped, failed, usage: await keyUsage(index, keyring) };
}

/** Removes master key `keyId` from the key file once no recording uses it (audited). */
export async function retireKey(index: RecordingIndex, keyring: Keyring, keyId: string, actor: string): Promise<void> {
  const mark = await index.getMark<RotationMark>(ROTATION_MARK);
  if (mark !== undefined) throw new TallenneError('TALLENNE_KEY_IN_USE', `a key rotation towards ${mark.to} is unfinished; run "tallenne keys rotate" to finish it first`);
  const inUse = (await index.dataKeyUsage()).find((u) => u.keyId === keyId)?.recordings ?? 0;
  if (inUse > 0) throw new TallenneError('TALLENNE_KEY_IN_USE', `master key ${keyId} still wraps the data keys of ${inUse} recording(s); run "tallenne keys rotate" first`);
  keyring.retire(keyId);
  await index.audit.append({ actor, action: 'keys-retire', details: { keyId } });
}
