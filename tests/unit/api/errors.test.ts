/** Every API error code is documented in README.md with its HTTP status. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { API_ERRORS, ApiError } from '../../../src/api/errors.js';
import { toApiError } from '../../../src/api/server.js';
import { TallenneError } from '../../../src/errors.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

describe('API error table', () => {
  for (const [code, { status }] of Object.entries(API_ERRORS)) {
    it(`${code} is documented with status ${status}`, () => {
      expect(readme).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    });
  }

  it('maps core errors and unknown failures without leaking their text', () => {
    expect(toApiError(new TallenneError('TALLENNE_NOT_FOUND', 'no recording X')).error).toMatchObject({ code: 'API_NOT_FOUND', status: 404 });
    expect(toApiError(new TallenneError('TALLENNE_ERASURE_REFUSED')).error.status).toBe(409);
    const unknown = toApiError(new Error('ENOENT: /secret/path'));
    expect(unknown).toMatchObject({ unexpected: true, error: { code: 'API_INTERNAL' } });
    expect(unknown.error.message).not.toContain('/secret');
    expect(toApiError(new ApiError('API_CSRF')).error.status).toBe(403);
  });
});
