/**
 * TLS for every listener that speaks it (SIP `tls:` listeners, and the HTTP listener with
 * `[http.tls]`): reading the certificate, key and CA files of a config block (refusing a key
 * file that group or others can reach), the server options (TLS 1.2 and later only), and
 * whether a client certificate names a peer we let in. It lives outside src/sip/ and
 * src/api/ because both use it and neither should import the other. Key material is never
 * put in an error message or a log line; only file paths are.
 */
import { readFileSync, statSync } from 'node:fs';
import type { PeerCertificate, SecureContextOptions, TlsOptions } from 'node:tls';
import { ConfigError } from '../errors.js';
import { KeyFileError, looseModeProblem } from '../secrets/key-file.js';
import type { Config } from '../config/schema.js';

/** The file keys of a TLS config block (`[tls]`, `[http.tls]`). */
export interface TlsFiles {
  readonly certificate_file?: string | undefined;
  readonly key_file?: string | undefined;
  readonly ca_file?: string | undefined;
}

/** A block's files and where they are configured ("tls", "http.tls"), for messages. */
export interface TlsSource {
  readonly key: string;
  readonly files: TlsFiles;
}

/** The files of a TLS block, read. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** The lowest protocol version offered or accepted. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

/** The `[tls]` block, when a SIP `tls:` listener uses it. */
export function sipTlsSource(c: Config): TlsSource | undefined {
  return c.sip.listen.some((l) => l.transport === 'tls') ? { key: 'tls', files: c.tls } : undefined;
}

/** The block the HTTP listener takes its certificate from: none, `[tls]`, or `[http.tls]`. */
export function httpTlsSource(c: Config): TlsSource | undefined {
  if (c.http.tls.mode === 'sip') return { key: 'tls', files: c.tls };
  if (c.http.tls.mode === 'own') return { key: 'http.tls', files: c.http.tls };
  return undefined;
}

/**
 * What is wrong with a block's files, one line each (missing, unreadable, not a file); empty
 * when nothing is. Paths only, never contents. The key file's mode is the rule of
 * secrets/key-file.ts, reported there for `check-config`.
 */
export function tlsFileProblems(src: TlsSource): string[] {
  return fileProblems(src).other;
}

function fileProblems({ key: block, files }: TlsSource): { other: string[]; loose: string[] } {
  const other: string[] = [];
  const loose: string[] = [];
  for (const key of ['certificate_file', 'key_file', 'ca_file'] as const) {
    const file = files[key];
    if (!file) continue;
    try {
      const st = statSync(file);
      if (!st.isFile()) other.push(`${block}.${key}: ${file} is not a file`);
      else if (key === 'key_file') {
        const problem = looseModeProblem(`${block}.key_file`, file, st.mode);
        if (problem) loose.push(problem);
      }
    } catch (e) {
      other.push(`${block}.${key}: ${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  return { other, loose };
}

/**
 * Reads a block's files. A key file open to group or others throws KeyFileError; any other
 * problem (missing, unreadable, not set) throws ConfigError listing each.
 */
export function loadTlsMaterial(src: TlsSource): TlsMaterial {
  const { key: block, files } = src;
  const { other, loose } = fileProblems(src);
  if (loose.length > 0) throw new KeyFileError(loose);
  if (!files.certificate_file) other.push(`${block}.certificate_file: not set`);
  if (!files.key_file) other.push(`${block}.key_file: not set`);
  if (other.length > 0) throw new ConfigError(other);
  const read = (key: 'certificate_file' | 'key_file' | 'ca_file', file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ConfigError([`${block}.${key}: ${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`]);
    }
  };
  return {
    cert: read('certificate_file', files.certificate_file!),
    key: read('key_file', files.key_file!),
    ...(files.ca_file ? { ca: read('ca_file', files.ca_file) } : {}),
  };
}

/** The secure context's part: certificate, key, CA; what a reload replaces. */
export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}), minVersion: MIN_TLS_VERSION };
}

/** The server's options: the context plus whether a client certificate is asked for. */
export function serverOptions(m: TlsMaterial, requireClientCertificate: boolean): TlsOptions {
  return {
    ...secureContextOptions(m),
    requestCert: requireClientCertificate,
    rejectUnauthorized: requireClientCertificate,
  };
}

/** The names a certificate carries: subject CN and SAN DNS names. */
export function certificateNames(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): string[] {
  const names: string[] = [];
  const cn = cert.subject?.CN as string | string[] | undefined;
  if (Array.isArray(cn)) names.push(...cn);
  else if (cn) names.push(cn);
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(part);
    if (m) names.push(m[1]!);
  }
  return names;
}

/** Whether a client certificate names an allowed peer (case-insensitive); an empty list allows all. */
export function clientNameAllowed(cert: Pick<PeerCertificate, 'subject' | 'subjectaltname'>, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const want = new Set(allowed.map((n) => n.toLowerCase()));
  return certificateNames(cert).some((n) => want.has(n.toLowerCase()));
}
