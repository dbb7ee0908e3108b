/**
 * The SSO routes through fastify.inject(), with a real oidc-provider on loopback behind
 * them: what the page learns from /auth/config, the redirect to the provider and its
 * pre-login cookie, refused callbacks (audited, counted), and the provider's access tokens on
 * the API. The whole browser login is in tests/integration/oidc-login.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiFixture, type ApiFixture } from '../../support/api-fixture.js';
import { startOidcProvider, type TestProvider } from '../../support/oidc-provider.js';

const AUDIENCE = 'urn:tallenne:api';
const REDIRECT = 'https://recorder.example.net/api/v1/auth/oidc/callback';

describe('without [auth.oidc]', () => {
  let f: ApiFixture;
  beforeAll(async () => {
    f = await startApiFixture();
  });
  afterAll(async () => {
    await f?.close();
  });

  it('tells the page there is no single sign-on, and has no SSO routes', async () => {
    const cfg = await f.app.inject({ method: 'GET', url: '/api/v1/auth/config' });
    expect(cfg.statusCode).toBe(200);
    expect(cfg.json()).toEqual({ oidc: false, oidcAvailable: false });
    const login = await f.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/login' });
    expect(login.statusCode).toBe(404);
    expect(login.json().error.code).toBe('API_ROUTE_NOT_FOUND');
  });

  it('refuses JWT bearer tokens as unknown', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' } });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('API_INVALID_TOKEN');
  });
});

describe('with [auth.oidc]', () => {
  let idp: TestProvider;
  let other: TestProvider;
  let f: ApiFixture;

  beforeAll(async () => {
    const common = { accounts: {}, clientId: 'tallenne', clientSecret: 'x'.repeat(32), redirectUri: REDIRECT, audience: AUDIENCE };
    idp = await startOidcProvider({ ...common, service: { roles: ['supervisor'], teams: ['sales'] } });
    other = await startOidcProvider({ ...common, service: { roles: ['dpo'] } });
    f = await startApiFixture({
      toml: `
[auth.oidc]
issuer = "${idp.issuer}"
client_id = "tallenne"
redirect_url = "${REDIRECT}"
audience = "${AUDIENCE}"
`,
    });
    f.deps.oidc!.start();
    await f.deps.oidc!.whenReady;
  });
  afterAll(async () => {
    await f?.close();
    await idp?.close();
    await other?.close();
  });

  it('tells the page that single sign-on is available', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/auth/config' });
    expect(res.json()).toEqual({ oidc: true, oidcAvailable: true });
  });

  it('redirects to the provider with PKCE, holding only a random id in a short-lived Lax cookie', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/auth/oidc/login' });
    expect(res.statusCode).toBe(302);
    expect(res.headers['cache-control']).toBe('no-store');
    const to = new URL(res.headers.location as string);
    expect(to.origin).toBe(idp.issuer);
    expect(to.searchParams.get('code_challenge_method')).toBe('S256');
    const cookie = res.cookies.find((c) => c.name === 'tallenne_oidc_login');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/api/v1/auth/oidc/callback', maxAge: 600, secure: true });
    expect(to.href).not.toContain(cookie!.value);
    expect(res.cookies.some((c) => c.name === 'tallenne_session')).toBe(false);
  });

  it('refuses a callback with a pre-login id it does not hold: redirected with the code, audited, counted', async () => {
    const res = await f.app.inject({
      method: 'GET',
      url: '/api/v1/auth/oidc/callback?code=forged&state=forged',
      cookies: { tallenne_oidc_login: 'made-up' },
    });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/?login_error=no-login-in-progress');
    expect(res.cookies.some((c) => c.name === 'tallenne_session')).toBe(false);
    // The pre-login cookie is cleared whatever the outcome.
    expect(res.cookies.find((c) => c.name === 'tallenne_oidc_login')?.value).toBe('');
    const entry = (await f.index.audit.list({ limit: 1000 })).find((e) => e.action === 'login-failed' && e.details?.why === 'no-login-in-progress');
    expect(entry?.details).toMatchObject({ via: 'oidc' });
    expect(await f.deps.metrics.registry.getSingleMetricAsString('tallenne_oidc_logins_total')).toContain('tallenne_oidc_logins_total{result="no-login-in-progress"} 1');
  });

  it('accepts the provider\'s access token on the API, with role and team from its claims', async () => {
    const token = await idp.serviceAccessToken();
    const me = await f.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ roles: ['supervisor'], teams: ['sales'], via: 'oidc' });
    const list = await f.app.inject({ method: 'GET', url: '/api/v1/recordings', headers: { authorization: `Bearer ${token}` } });
    expect(list.statusCode).toBe(200);
    expect((list.json() as { items: Array<{ id: string }> }).items.map((i) => i.id)).toEqual([f.ids.other]);
  });

  it('refuses another provider\'s access token with 401 API_INVALID_TOKEN, audited as a failed login', async () => {
    const res = await f.app.inject({ method: 'GET', url: '/api/v1/recordings', headers: { authorization: `Bearer ${await other.serviceAccessToken()}` } });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json().error.code).toBe('API_INVALID_TOKEN');
    expect((await f.index.audit.list({ limit: 1000 })).some((e) => e.action === 'login-failed' && e.details?.why === 'API_INVALID_TOKEN')).toBe(true);
  });
});
