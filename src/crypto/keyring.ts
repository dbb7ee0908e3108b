/**
 * The master keys that wrap every data key (AES-256-GCM key wrapping, node:crypto).
 *
 * One file, `[encryption] master_key_file`, holds every master key the recorder keeps: one
 * line per key, `ID BASE64`, oldest first; the last line is the current key, which wraps new
 * data keys. Old keys stay in the file, so data wrapped under them is still found by the id
 * a wrapped key carries, until `tallenne keys retire ID` removes one nothing uses any more.
 * One file means one thing to back up, and every change is one atomic rename.
 *
 * The file is created with mode 0600 when absent. A file that group or others may read or
 * write is refused (TALLENNE_KEY_FILE_INSECURE): the recorder does not start on it.
 *
 * The keyring re-reads the file when it changes (another process rotated or retired a key),
 * so a running daemon wraps under the new current key and unwraps data keys re-wrapped by
 * `tallenne keys rotate` without a restart. Key material never reaches a log line or an
 * error message; ids are not secret.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TallenneError } from '../errors.js';
import { KeyFileError, looseModeProblem } from '../secrets/key-file.js';

/** A data key wrapped by a master key: small and JSON-able, kept beside the data it opens. */
export interface WrappedKey {
  /** Id of the master key that wrapped it. */
  readonly keyId: string;
  /** GCM nonce, base64. */
  readonly iv: string;
  /** Wrapped key and GCM tag, base64. */
  readonly data: string;
}

/**
 * What users of wrapped keys need (the audio store, the spool): wrap a fresh data key under
 * the current master key and unwrap one later. `context` names what the key protects
 * ("recording:ID", "spool:ID") and is bound into the wrapping, so a wrapped key copied to
 * another recording does not open.
 */
export interface KeyWrapper {
  readonly currentKeyId: string;
  wrap(dataKey: Uint8Array, context: string): WrappedKey;
  unwrap(wrapped: WrappedKey, context: string): Buffer;
}

export interface KeyringConfig {
  readonly master_key_file: string;
}

export const DATA_KEY_BYTES = 32;
const MASTER_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEADER = '# tallenne master keys: one per line, "ID BASE64-KEY", oldest first; the last line is the current key.\n' +
  '# Keep this file secret (mode 0600) and back it up apart from the recordings: without it no recording can be played.\n';

interface FileStamp {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export class Keyring implements KeyWrapper {
  private keys = new Map<string, Buffer>();
  private current = '';
  private stamp: FileStamp | null = null;

  private constructor(
    readonly file: string,
    /** True when open() created the file (first start). */
    readonly created: boolean,
  ) {}

  /**
   * Reads the key file, or creates it with one fresh key (mode 0600, its folder 0700) when
   * absent and `create` is not false. Throws TALLENNE_KEY_FILE_INSECURE on a loose mode,
   * TALLENNE_KEY_FILE_INVALID when the file is missing (create false), unreadable or damaged.
   */
  static open(cfg: KeyringConfig, opts: { create?: boolean } = {}): Keyring {
    const file = cfg.master_key_file;
    let created = false;
    if (opts.create !== false && !exists(file)) {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      try {
        writeKeyFile(file, [[newKeyId(), randomBytes(MASTER_KEY_BYTES)]], 'wx');
        created = true;
      } catch (e) {
        // Made by another process meanwhile: read theirs.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw keyFileError(file, e);
      }
    }
    const ring = new Keyring(file, created);
    ring.load();
    return ring;
  }

  /** The keyring when its file exists, else null (encryption off: nothing to read or create). */
  static openIfPresent(cfg: KeyringConfig): Keyring | null {
    return exists(cfg.master_key_file) ? Keyring.open(cfg, { create: false }) : null;
  }

  get currentKeyId(): string {
    this.refresh();
    return this.current;
  }

  /** Every key id held, oldest first (the last is the current one). */
  keyIds(): string[] {
    this.refresh();
    return [...this.keys.keys()];
  }

  has(keyId: string): boolean {
    this.refresh();
    return this.keys.has(keyId);
  }

  wrap(dataKey: Uint8Array, context: string): WrappedKey {
    this.refresh();
    const keyId = this.current;
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv('aes-256-gcm', this.keys.get(keyId)!, iv);
    c.setAAD(wrapAad(keyId, context));
    const data = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()]);
    return { keyId, iv: iv.toString('base64'), data: data.toString('base64') };
  }

  unwrap(wrapped: WrappedKey, context: string): Buffer {
    this.refresh();
    const master = this.keys.get(wrapped.keyId);
    if (!master) throw new TallenneError('TALLENNE_KEY_UNKNOWN', `the data key is wrapped under master key ${wrapped.keyId}, which ${this.file} does not hold`);
    const iv = Buffer.from(wrapped.iv, 'base64');
    const data = Buffer.from(wrapped.data, 'base64');
    if (iv.length !== IV_BYTES || data.length <= TAG_BYTES) throw new TallenneError('TALLENNE_DECRYPT_FAILED', 'a wrapped data key is malformed');
    try {
      const d = createDecipheriv('aes-256-gcm', master, iv);
      d.setAAD(wrapAad(wrapped.keyId, context));
      d.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([d.update(data.subarray(0, data.length - TAG_BYTES)), d.final()]);
    } catch {
      throw new TallenneError('TALLENNE_DECRYPT_FAILED', `a data key wrapped under master key ${wrapped.keyId} failed authentication`);
    }
  }

  /** Adds a fresh master key, which becomes the current one; returns its id. */
  addKey(keyId: string = newKeyId()): string {
    this.refresh();
    if (!ID_RE.test(keyId)) throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `"${keyId}" is not a master key id`);
    if (this.keys.has(keyId)) throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `master key ${keyId} exists already`);
    this.save([...this.keys.entries(), [keyId, randomBytes(MASTER_KEY_BYTES)]]);
    return keyId;
  }

  /** Removes an old master key from the file. The current key cannot be retired. */
  retire(keyId: string): void {
    this.refresh();
    if (!this.keys.has(keyId)) throw new TallenneError('TALLENNE_KEY_UNKNOWN', `${this.file} holds no master key ${keyId}`);
    if (keyId === this.current) throw new TallenneError('TALLENNE_KEY_IN_USE', `master key ${keyId} is the current key; rotate to a new one first`);
    this.save([...this.keys.entries()].filter(([id]) => id !== keyId));
  }

  private save(entries: Array<[string, Buffer]>): void {
    writeKeyFile(this.file, entries, 'replace');
    this.stamp = null;
    this.load();
  }

  /** Re-reads the file when it has changed since it was read. */
  private refresh(): void {
    let s: FileStamp;
    try {
      const st = statSync(this.file);
      s = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      // Gone meanwhile: keep the keys in memory rather than stop recording.
      if (this.current !== '') return;
      throw keyFileError(this.file, e);
    }
    if (this.stamp && s.ino === this.stamp.ino && s.size === this.stamp.size && s.mtimeMs === this.stamp.mtimeMs) return;
    this.load();
  }

  private load(): void {
    let text: string;
    let st: ReturnType<typeof fstatSync>;
    try {
      const fd = openSync(this.file, 'r');
      try {
        st = fstatSync(fd);
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw keyFileError(this.file, e);
    }
    checkMode(this.file, st.mode);
    const keys = parseKeyFile(this.file, text);
    this.keys = keys;
    this.current = [...keys.keys()].pop()!;
    this.stamp = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  }
}

/** Refuses a key file whose mode lets group or others read or write it (the one rule: src/secrets/key-file.ts). */
function checkMode(file: string, mode: number): void {
  const problem = looseModeProblem('encryption.master_key_file', file, mode);
  if (problem !== undefined) throw new KeyFileError([problem]);
}

function parseKeyFile(file: string, text: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  let n = 0;
  for (const raw of text.split('\n')) {
    n++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [id, b64, extra] = line.split(/\s+/);
    const key = b64 === undefined ? null : Buffer.from(b64, 'base64');
    if (id === undefined || !ID_RE.test(id) || key === null || key.length !== MASTER_KEY_BYTES || extra !== undefined) {
      throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `${file} line ${n} is not "ID BASE64-KEY" with a 256-bit key`);
    }
    if (keys.has(id)) throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `${file} line ${n}: master key ${id} appears twice`);
    keys.set(id, key);
  }
  if (keys.size === 0) throw new TallenneError('TALLENNE_KEY_FILE_INVALID', `${file} holds no master key`);
  return keys;
}

/**
 * Writes the key file whole: a temp file (0600) beside it, fsync, rename over it, fsync the
 * folder. `wx` creates it only if absent; `replace` swaps the file atomically.
 */
function writeKeyFile(file: string, entries: Array<[string, Buffer]>, how: 'wx' | 'replace'): void {
  const text = HEADER + entries.map(([id, k]) => `${id} ${k.toString('base64')}\n`).join('');
  const target = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(target, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(target);
    throw e;
  }
  closeSync(fd);
  if (how === 'replace') renameSync(target, file);
  else {
    // link() fails when the file exists: created whole, or not at all.
    try {
      linkSync(target, file);
    } finally {
      unlinkSync(target);
    }
  }
  const dfd = openSync(dirname(file), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** "mk-20261124-135800-9f3a2c": sortable by creation, unique enough, no secret in it. */
export function newKeyId(now: Date = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `mk-${t}-${randomBytes(3).toString('hex')}`;
}

function wrapAad(keyId: string, context: string): Buffer {
  return Buffer.from(`tallenne-key-wrap:1:${keyId}:${context}`, 'utf8');
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw keyFileError(file, e);
  }
}

function keyFileError(file: string, e: unknown): TallenneError {
  if (e instanceof TallenneError) return e;
  return new TallenneError('TALLENNE_KEY_FILE_INVALID', `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
}

/** A fresh random data key (256 bits) and its wrapped form for `context`. */
export function newDataKey(wrapper: KeyWrapper, context: string): { key: Buffer; wrapped: WrappedKey } {
  const key = randomBytes(DATA_KEY_BYTES);
  return { key, wrapped: wrapper.wrap(key, context) };
}

/**
 * The keyring a process needs under `[encryption]`. The daemon (`create`) with encryption on
 * opens the key file, creating it on first start. Otherwise (encryption off, or a CLI
 * command) the file is read when it exists, so recordings encrypted earlier can still be
 * read; without it there is nothing encrypted this process could open.
 */
export function keyringFor(enc: KeyringConfig & { readonly enabled: boolean }, opts: { create: boolean }): Keyring | null {
  if (enc.enabled && opts.create) return Keyring.open(enc, { create: true });
  return Keyring.openIfPresent(enc);
}

