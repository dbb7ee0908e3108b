/**
 * TOML → one schema → frozen typed config. The only module that reads the environment.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, TomlError } from 'smol-toml';
import { configSchema, type Config } from './schema.js';
import { ConfigError, TallenneError } from '../errors.js';

export interface LoadedConfig {
  readonly config: Config;
  /** Absolute path of the file it came from. */
  readonly file: string;
  /** Folder relative paths were resolved against. */
  readonly baseDir: string;
}

/** The embedded default config, shipped in the package. */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('../../config/tallenne.toml', import.meta.url));

/** The config file the CLI uses: --config, else TALLENNE_CONFIG, else the embedded default. */
export function configPathFrom(flag: string | undefined): string {
  return resolve(flag ?? process.env.TALLENNE_CONFIG ?? DEFAULT_CONFIG_FILE);
}

export function loadConfigFile(file: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TallenneError('TALLENNE_CONFIG_UNREADABLE', `${file}: ${(e as Error).message}`, { cause: e });
  }
  return parseConfigText(text, file);
}

export function parseConfigText(text: string, file: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      throw new ConfigError([`line ${e.line}, column ${e.column}: ${e.message.split('\n')[0]}`], file);
    }
    throw e;
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${formatPath(i.path)}: ${describeIssue(i)}`);
    throw new ConfigError(problems, file);
  }
  const baseDir = dirname(resolve(file));
  const config = resolvePaths(result.data, baseDir);
  return { config: deepFreeze(config), file: resolve(file), baseDir };
}

function describeIssue(i: { code: string; message: string; keys?: readonly string[] }): string {
  if (i.code === 'unrecognized_keys' && i.keys) return `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
  return i.message;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out.length === 0 ? String(p) : `.${String(p)}`;
  }
  return out;
}

function resolvePaths(c: Config, baseDir: string): Config {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    ...c,
    storage: { ...c.storage, dir: abs(c.storage.dir), ...(c.storage.credentials_file ? { credentials_file: abs(c.storage.credentials_file) } : {}) },
    privacy: { ...c.privacy, hash_key_file: abs(c.privacy.hash_key_file) },
    encryption: { ...c.encryption, master_key_file: abs(c.encryption.master_key_file) },
    auth: c.auth.oidc?.client_secret_file ? { ...c.auth, oidc: { ...c.auth.oidc, client_secret_file: abs(c.auth.oidc.client_secret_file) } } : c.auth,
    tls: {
      ...c.tls,
      ...(c.tls.certificate_file ? { certificate_file: abs(c.tls.certificate_file) } : {}),
      ...(c.tls.key_file ? { key_file: abs(c.tls.key_file) } : {}),
      ...(c.tls.ca_file ? { ca_file: abs(c.tls.ca_file) } : {}),
    },
    http: {
      ...c.http,
      tls: {
        ...c.http.tls,
        ...(c.http.tls.certificate_file ? { certificate_file: abs(c.http.tls.certificate_file) } : {}),
        ...(c.http.tls.key_file ? { key_file: abs(c.http.tls.key_file) } : {}),
        ...(c.http.tls.ca_file ? { ca_file: abs(c.http.tls.ca_file) } : {}),
      },
    },
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof RegExp)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

/** S3 credentials from the environment (the standard AWS variables); null when either is unset. */
export function s3CredentialsFromEnvironment(): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return null;
  const sessionToken = process.env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}
