/**
 * The effective config as plain data (durations as their text, patterns as source), for
 * `check-config`, for the daemon's record of what it runs with, and for reload diffs. Each
 * difference says whether a reload applies it, from the one reload table (reload.ts).
 */
import type { Config } from './schema.js';
import { isReloadable } from './reload.js';

export interface ConfigChange {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
  /** A SIGHUP applies it; otherwise it needs a restart. */
  readonly reloadable: boolean;
}

export function describeConfig(c: Config): Record<string, unknown> {
  return JSON.parse(JSON.stringify(c, (_k, v: unknown) => {
    if (v instanceof RegExp) return v.source;
    if (v && typeof v === 'object' && 'months' in v && 'ms' in v && 'text' in v) return (v as { text: string }).text;
    if (v && typeof v === 'object' && 'perSecond' in v && 'text' in v) return (v as { text: string }).text;
    if (v && typeof v === 'object' && 'transport' in v && 'address' in v && 'port' in v && Object.keys(v).length === 3) {
      const l = v as { transport: string; address: string; port: number };
      return `${l.transport}:${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}`;
    }
    return v;
  })) as Record<string, unknown>;
}

/** Key paths whose values differ, with old and new values. */
export function diffConfig(before: Record<string, unknown>, after: Record<string, unknown>): ConfigChange[] {
  const out: ConfigChange[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isPlain(a) && isPlain(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], path ? `${path}.${k}` : k);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, before: a, after: b, reloadable: isReloadable(path) });
  };
  walk(before, after, '');
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
