/**
 * What the daemon loads whatever its config: the packages of an optional backend (the AWS SDK
 * for an S3 store, the PostgreSQL client for a shared register) are reached only through a
 * dynamic import where the config names them, so a recorder on local files and LMDB does not
 * hold them (bench/README.md, "memory after the fourth window"). This walks the static import
 * graph of the sources from src/daemon.ts; `import type` and `import()` are not followed.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const STATIC_IMPORT = /^\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm;

/** Each package the graph imports statically, with one chain of files that leads to it. */
function staticPackages(entry: string): Map<string, string[]> {
  const parent = new Map<string, string | null>([[entry, null]]);
  const queue = [entry];
  const found = new Map<string, string[]>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        if (existsSync(target) && !parent.has(target)) {
          parent.set(target, file);
          queue.push(target);
        }
      } else if (!found.has(spec)) {
        const chain: string[] = [];
        for (let f: string | null | undefined = file; f; f = parent.get(f)) chain.unshift(relative(SRC, f));
        found.set(spec, chain);
      }
    }
  }
  return found;
}

describe('the daemon\'s static imports', () => {
  const packages = staticPackages(join(SRC, 'daemon.ts'));

  it('reach the packages every recorder uses', () => {
    // The walk itself works: these are loaded by every daemon.
    for (const p of ['lmdb', 'fastify', 'prom-client']) expect(packages.has(p), p).toBe(true);
  });

  it('never reach the AWS SDK or the PostgreSQL client', () => {
    const optional = [...packages].filter(([p]) => p.startsWith('@aws-sdk/') || p === 'pg');
    expect(optional.map(([p, chain]) => `${p}: ${chain.join(' → ')}`)).toEqual([]);
  });
});
