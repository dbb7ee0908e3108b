/**
 * The TLS side of the SIP listeners: reading the certificate, key and CA files of `[tls]`
 * (refusing a key file that group or others can read), the server options (TLS 1.2 and
 * later only), and whether a client certificate names a peer we let in. Key material is
 * never put in an error message or a log line; only file paths are.
 */
import { readFileSync, statSync } from 'node:fs';
import type { PeerCertificate, SecureContextOptions, TlsOptions } from 'node:tls';
import { ConfigError } from '../errors.js';
import type { TlsConfig } from '../config/schema.js';

/** The files of `[tls]`, read. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** The lowest protocol version offered or accepted. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

/**
 * What is wrong with the `[tls]` files, one line each (missing, unreadable, a key file
 * readable by group or others); empty when nothing is. Paths only, never contents.
 */
export function tlsFileProblems(tls: TlsConfig): string[] {
  const problems: string[] = [];
  const check = (key: 'certificate_file' | 'key_file' | 'ca_file') => {
    const file = tls[key];
    if (!file) return;
    try {
      const st = statSync(file);
      if (!st.isFile()) problems.push(`tls.${key}: ${file} is not a file`);
      else if (key === 'key_file' && (st.mode & 0o077) !== 0) {
        problems.push(`tls.key_file: ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
      }
    } catch (e) {
      problems.push(`tls.${key}: ${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  };
  check('certificate_file');
  check('key_file');
  check('ca_file');
  return problems;
}

/** Reads the `[tls]` files; throws ConfigError listing every problem. */
export function loadTlsMaterial(tls: TlsConfig): TlsMaterial {
  const problems = tlsFileProblems(tls);
  if (!tls.certificate_file) problems.push('tls.certificate_file: not set');
  if (!tls.key_file) problems.push('tls.key_file: not set');
  if (problems.length > 0) throw new ConfigError(problems);
  const read = (key: 'certificate_file' | 'key_file' | 'ca_file', file: string) => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ConfigError([`tls.${key}: ${file}: ${(e as NodeJS.ErrnoException).code ?? 'unreadable'}`]);
    }
  };
  return {
    cert: read('certificate_file', tls.certificate_file!),
    key: read('key_file', tls.key_file!),
    ...(tls.ca_file ? { ca: read('ca_file', tls.ca_file) } : {}),
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
