/**
 * Every error code in the table is raised somewhere in src/ (outside the table itself) and
 * documented in README's Error codes table, and every code the call manager refuses with is
 * one of them (each refusal is triggered in tests/unit/calls/manager.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from '../../src/errors.js';
import { REJECTIONS } from '../../src/calls/rejections.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error codes', () => {
  const src = sources(join(ROOT, 'src')).filter((p) => !p.endsWith(join('src', 'errors.ts'))).map((p) => readFileSync(p, 'utf8')).join('\n');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1));

  // ConfigError (in errors.ts) carries TALLENNE_CONFIG_INVALID: it is raised where one is made.
  const raisedBy: Record<string, string> = { TALLENNE_CONFIG_INVALID: 'new ConfigError(' };

  it.each(Object.keys(ERROR_CODES))('%s is raised in src/ and documented in the README table', (code) => {
    expect(src, `${code} is never raised`).toContain(raisedBy[code] ?? `'${code}'`);
    expect(table).toMatch(new RegExp(`^\\| \`${code}\` \\| `, 'm'));
  });

  it('every refusal of the call manager is a code of the table', () => {
    for (const code of Object.keys(REJECTIONS)) expect(Object.keys(ERROR_CODES)).toContain(code);
  });
});
