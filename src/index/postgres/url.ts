/**
 * The register's PostgreSQL URL: what makes one acceptable, where it comes from ([index] url,
 * or a private file named by url_file), and how it is shown. The password is read only
 * here and handed only to the driver; every message about a URL shows it without one.
 */
import { readFileSync } from 'node:fs';
import { assertPrivateKeyFile } from '../../secrets/key-file.js';
import { TallenneError } from '../../errors.js';

/** What is wrong with a PostgreSQL URL, or undefined. Never repeats the URL. */
export function postgresUrlProblem(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return 'is not a URL (postgres://USER@HOST:PORT/DATABASE)';
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return 'must be a postgres:// URL';
  if (u.hostname === '' && !u.searchParams.has('host')) return 'names no host';
  return undefined;
}

/** The URL with its password replaced by "***" (for logs and messages). */
export function redactUrl(s: string): string {
  try {
    const u = new URL(s);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Removes the URL's password from a text (a driver message that might echo it). */
export function scrubPassword(text: string, url: string): string {
  let pw = '';
  try {
    pw = decodeURIComponent(new URL(url).password);
  } catch {
    return text;
  }
  return pw.length === 0 ? text : text.split(pw).join('***');
}

/** The URL of a url_file: private (mode 0600), one line. */
export function readUrlFile(file: string, key = 'index.url_file'): string {
  assertPrivateKeyFile(key, file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new TallenneError('TALLENNE_CONFIG_UNREADABLE', `${key}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const problem = postgresUrlProblem(text);
  if (problem !== undefined) throw new TallenneError('TALLENNE_CONFIG_INVALID', `${key}: the URL in ${file} ${problem}`);
  return text;
}

/** The URL the [index] table names: url, else the content of url_file. */
export function indexUrl(index: { url?: string | undefined; url_file?: string | undefined }): string {
  if (index.url !== undefined) return index.url;
  if (index.url_file !== undefined) return readUrlFile(index.url_file);
  throw new TallenneError('TALLENNE_CONFIG_INVALID', 'index: backend = "postgres" needs url or url_file');
}
