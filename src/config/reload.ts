/**
 * The reload table: which config keys a SIGHUP applies to the running daemon, and what each
 * one changes. It drives both the preview of a reload (`check-config`, through describe.ts)
 * and the daemon's live merge, so the two can never disagree. Every other key (listeners,
 * ports, paths, worker count, privacy keys that shape stored data) needs a restart.
 */
import type { Config } from './schema.js';

export interface ReloadRule {
  /** A key path, or a table whose every key reloads ("retention", "agents"). */
  readonly path: string;
  /** What takes the new value, for operators and tests. */
  readonly effect: string;
}

export const RELOAD_TABLE: readonly ReloadRule[] = [
  { path: 'retention', effect: 'policies and defaults for recordings stored from now on; the purge job runs at the new purge_interval' },
  { path: 'agents', effect: 'the agents directory for calls answered or updated from now on' },
  { path: 'roles', effect: 'service numbers and the internal pattern for calls answered or updated from now on' },
  { path: 'log.level', effect: 'the root logger and every child logger' },
  { path: 'calls.max_concurrent', effect: 'the limit new INVITEs are admitted against' },
  { path: 'calls.shutdown_deadline', effect: 'how long the next graceful stop lets calls go on' },
  { path: 'rtp.inactivity_timeout', effect: 'the inactivity watchdog, for live calls too' },
  { path: 'storage.min_free', effect: 'the free-space floor new INVITEs are admitted against' },
  { path: 'privacy.mask_dtmf', effect: 'DTMF masking of recordings encoded from now on' },
  { path: 'encoder.complexity', effect: 'Opus complexity of recordings encoded from now on' },
  { path: 'encoder.bitrate', effect: 'Opus bitrate of recordings encoded from now on' },
  { path: 'encoder.skip_silence', effect: 'the silence gate of recordings encoded from now on' },
  { path: 'api.max_export', effect: 'the size limit of the next bulk exports' },
  { path: 'api.rate_limit', effect: 'the per-identity request limit of the API' },
  { path: 'api.login_rate_limit', effect: 'the per-address limit of failed logins' },
  { path: 'access', effect: 'the access review window' },
  { path: 'tls.certificate_file', effect: 'the TLS listeners\' certificate for connections made from now on (the files are re-read on every reload)' },
  { path: 'tls.key_file', effect: 'the TLS listeners\' private key for connections made from now on' },
  { path: 'tls.ca_file', effect: 'the CA client certificates are checked against, for connections made from now on' },
  { path: 'http.tls.certificate_file', effect: 'the HTTPS listener\'s certificate for connections made from now on (re-read on every reload)' },
  { path: 'http.tls.key_file', effect: 'the HTTPS listener\'s private key for connections made from now on' },
  { path: 'http.tls.ca_file', effect: 'the CA HTTPS client certificates are checked against, for connections made from now on' },
  { path: 'http.tls.allowed_client_names', effect: 'the client certificate names HTTPS connections made from now on are let in with' },
  { path: 'http.tls.hsts_max_age', effect: 'the Strict-Transport-Security header of responses from now on' },
];

/** Whether a changed key path (as diffConfig writes it) is applied by a reload. */
export function isReloadable(path: string): boolean {
  return RELOAD_TABLE.some(({ path: p }) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
}

/**
 * The config a reload puts in force: every key of the table from `next`, everything else
 * from `running`. The result is frozen like a loaded config.
 */
export function mergeReload(running: Config, next: Config): Config {
  let merged: unknown = running;
  for (const { path } of RELOAD_TABLE) merged = setPath(merged, path.split('.'), getPath(next, path.split('.')));
  return merged as Config;
}

function getPath(o: unknown, keys: readonly string[]): unknown {
  return keys.reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], o);
}

/** A copy of `o` with the value at `keys` replaced; the copies made on the way are frozen. */
function setPath(o: unknown, keys: readonly string[], value: unknown): unknown {
  if (keys.length === 0) return value;
  const [k, ...rest] = keys as [string, ...string[]];
  const obj = o as Record<string, unknown>;
  return Object.freeze({ ...obj, [k]: setPath(obj[k], rest, value) });
}
