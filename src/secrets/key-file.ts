/**
 * The one rule for files that hold secrets (the number-hash HMAC key, TLS private keys, the
 * OpenID client secret, the master key file of encryption at rest, the register's PostgreSQL
 * URL file, the S3 credentials file): only their owner may read or write them. A file that
 * its group or others can reach is refused, naming the config key, the path and the mode, and saying how
 * to fix it. Paths and modes only: never a byte of the file.
 */
import { statSync } from 'node:fs';
import { TallenneError } from '../errors.js';
import type { Config } from '../config/schema.js';

/** A key file reachable by group or others: the daemon and the CLI refuse to use it. */
export class KeyFileError extends TallenneError {
  /** One line per file, each starting with the config key. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('TALLENNE_KEY_FILE_INSECURE', problems.length === 1 ? problems[0]! : `${problems.length} key files are not private\n  ${problems.join('\n  ')}`);
    this.problems = problems;
    this.name = 'KeyFileError';
  }
}

/** Permission bits a key file must not have: any access for group or others. */
const LOOSE_BITS = 0o077;

/** What is wrong with the mode of an existing key file, or undefined when nothing is. */
export function looseModeProblem(key: string, file: string, mode: number): string | undefined {
  if ((mode & LOOSE_BITS) === 0) return undefined;
  return `${key}: ${file} is open to group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); a key file must be private: chmod 600 ${file}`;
}

/**
 * The mode problem of a key file on disk; undefined when it is private or absent (an absent
 * file is reported, or created, by whoever reads it).
 */
export function keyFileProblem(key: string, file: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined;
  }
  return looseModeProblem(key, file, mode);
}

/** Throws KeyFileError when the file exists and is not private. */
export function assertPrivateKeyFile(key: string, file: string): void {
  const problem = keyFileProblem(key, file);
  if (problem !== undefined) throw new KeyFileError([problem]);
}

/** Every key file a config names and the daemon would read, with its config key. */
export function configKeyFiles(c: Config): Array<{ key: string; file: string }> {
  const files = [{ key: 'privacy.hash_key_file', file: c.privacy.hash_key_file }];
  const sipTls = c.sip.listen.some((l) => l.transport === 'tls') || c.http.tls.mode === 'sip';
  if (sipTls && c.tls.key_file) files.push({ key: 'tls.key_file', file: c.tls.key_file });
  if (c.http.tls.mode === 'own' && c.http.tls.key_file) files.push({ key: 'http.tls.key_file', file: c.http.tls.key_file });
  if (c.auth.oidc?.client_secret_file) files.push({ key: 'auth.oidc.client_secret_file', file: c.auth.oidc.client_secret_file });
  if (c.index.backend === 'postgres' && c.index.url_file) files.push({ key: 'index.url_file', file: c.index.url_file });
  if (c.storage.backend === 's3' && c.storage.credentials_file) files.push({ key: 'storage.credentials_file', file: c.storage.credentials_file });
  // Read whenever it exists (recordings encrypted earlier stay readable with encryption off).
  files.push({ key: 'encryption.master_key_file', file: c.encryption.master_key_file });
  return files;
}

/** The mode problems of every key file of a config (for `check-config` and start-up). */
export function configKeyFileProblems(c: Config): string[] {
  return configKeyFiles(c).flatMap(({ key, file }) => keyFileProblem(key, file) ?? []);
}
