/**
 * The effective config as plain data (durations as their text, patterns as source), for
 * `check-config`, for the daemon's record of what it runs with, and for reload diffs.
 */
import type { Config } from './schema.js';

export function describeConfig(c: Config): Record<string, unknown> {
  return JSON.parse(JSON.stringify(c, (_k, v: unknown) => {
    if (v instanceof RegExp) return v.source;
    if (v && typeof v === 'object' && 'months' in v && 'ms' in v && 'text' in v) return (v as { text: string }).text;
    if (v && typeof v === 'object' && 'transport' in v && 'address' in v && 'port' in v && Object.keys(v).length === 3) {
      const l = v as { transport: string; address: string; port: number };
      return `${l.transport}:${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}`;
    }
    return v;
  })) as Record<string, unknown>;
}

/** Key paths whose values differ, with old and new values. */
export function diffConfig(before: Record<string, unknown>, after: Record<string, unknown>): Array<{ path: string; before: unknown; after: unknown }> {
  const out: Array<{ path: string; before: unknown; after: unknown }> = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isPlain(a) && isPlain(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], path ? `${path}.${k}` : k);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, before: a, after: b });
  };
  walk(before, after, '');
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sections a SIGHUP applies without a restart; everything else needs one. */
export const RELOADABLE_PREFIXES = ['retention', 'agents', 'roles', 'log.level', 'calls.max_concurrent', 'calls.shutdown_deadline', 'privacy.mask_dtmf', 'rtp.inactivity_timeout', 'encoder.complexity', 'encoder.bitrate', 'encoder.skip_silence', 'storage.min_free', 'api.max_export', 'api.rate_limit', 'api.login_rate_limit', 'access'];

export function isReloadable(path: string): boolean {
  return RELOADABLE_PREFIXES.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
}
