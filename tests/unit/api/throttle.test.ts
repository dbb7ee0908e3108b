/** Failed authentications are cut off per client address at [api] login_rate_limit a minute. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, startApiFixture, type ApiFixture } from '../../support/api-fixture.js';

let f: ApiFixture;
beforeAll(async () => {
  f = await startApiFixture({ toml: 'login_rate_limit = 3' });
}, 60_000);
afterAll(async () => {
  await f?.close();
});

describe('failed-login throttling', () => {
  it('answers 429 after the budget of failures, without auditing each one, and lets other addresses in', async () => {
    const bad = bearer(`tln.0123456789abcdef.${'B'.repeat(43)}`);
    for (let i = 0; i < 3; i++) expect((await f.app.inject({ url: '/api/v1/me', headers: bad })).statusCode).toBe(401);
    const failedBefore = (await f.index.audit.list({ limit: 10_000 })).filter((e) => e.action === 'login-failed').length;
    const throttled = await f.app.inject({ url: '/api/v1/me', headers: bad });
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json()).toMatchObject({ error: { code: 'API_RATE_LIMITED' } });
    // Even a good token from that address waits; the token login is throttled too.
    expect((await f.app.inject({ url: '/api/v1/me', headers: bearer(f.tokens.quality) })).statusCode).toBe(429);
    expect((await f.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: f.tokens.quality } })).statusCode).toBe(429);
    expect((await f.index.audit.list({ limit: 10_000 })).filter((e) => e.action === 'login-failed').length).toBe(failedBefore);
    const elsewhere = await f.app.inject({ url: '/api/v1/me', headers: bearer(f.tokens.quality), remoteAddress: '127.0.0.2' });
    expect(elsewhere.statusCode).toBe(200);
  });
});
