/**
 * The S3 access key and secret: from `storage.credentials_file` (private to its owner, in the
 * AWS shared-credentials form) or else from the environment (read by src/config/). The secret
 * is never logged and never part of the effective config; errors name the file and the key,
 * never a value.
 */
import { readFileSync } from 'node:fs';
import { TallenneError } from '../errors.js';
import { assertPrivateKeyFile } from '../secrets/key-file.js';

export interface S3Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

const FIELDS = { aws_access_key_id: 'accessKeyId', aws_secret_access_key: 'secretAccessKey', aws_session_token: 'sessionToken' } as const;

/**
 * Parses `aws_access_key_id = …` / `aws_secret_access_key = …` lines (an optional
 * `aws_session_token`). Comments (`#`, `;`) and a `[default]` header are allowed; another
 * profile's section is refused rather than guessed at.
 */
export function parseS3Credentials(text: string, file: string): S3Credentials {
  const found: Partial<Record<(typeof FIELDS)[keyof typeof FIELDS], string>> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      if (line !== '[default]') throw credentialsError(file, `line ${i + 1}: only a [default] section is read`);
      continue;
    }
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).trim().toLowerCase();
    if (eq < 0 || !(name in FIELDS)) throw credentialsError(file, `line ${i + 1}: expected aws_access_key_id, aws_secret_access_key or aws_session_token = value`);
    const value = line.slice(eq + 1).trim();
    if (value === '') throw credentialsError(file, `line ${i + 1}: ${name} is empty`);
    found[FIELDS[name as keyof typeof FIELDS]] = value;
  }
  if (!found.accessKeyId || !found.secretAccessKey) throw credentialsError(file, 'needs both aws_access_key_id and aws_secret_access_key');
  return { accessKeyId: found.accessKeyId, secretAccessKey: found.secretAccessKey, ...(found.sessionToken ? { sessionToken: found.sessionToken } : {}) };
}

/** The credentials file if one is configured (it must be private), else the environment's. */
export function loadS3Credentials(credentialsFile: string | undefined, fromEnvironment: S3Credentials | null): S3Credentials {
  if (credentialsFile) {
    assertPrivateKeyFile('storage.credentials_file', credentialsFile);
    let text: string;
    try {
      text = readFileSync(credentialsFile, 'utf8');
    } catch (e) {
      throw credentialsError(credentialsFile, (e as NodeJS.ErrnoException).code ?? 'unreadable');
    }
    return parseS3Credentials(text, credentialsFile);
  }
  if (fromEnvironment) return fromEnvironment;
  throw new TallenneError('TALLENNE_S3_CREDENTIALS', 'storage.backend is "s3" and no credentials are given: set storage.credentials_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
}

function credentialsError(file: string, why: string): TallenneError {
  return new TallenneError('TALLENNE_S3_CREDENTIALS', `storage.credentials_file: ${file}: ${why}`);
}
