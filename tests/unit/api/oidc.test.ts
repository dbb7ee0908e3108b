/**
 * The relying party against a real oidc-provider on loopback: discovery (and its retry while
 * the provider is down), the start of the PKCE login, one-time pre-login state, the
 * provider's access tokens as Bearer tokens, and the client secret file's permissions.
 * The full browser login is in tests/integration/oidc-login.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.js';
import { OidcClient, OidcLoginError, readClientSecret } from '../../../src/api/auth/oidc.js';
import { ApiError } from '../../../src/api/errors.js';
import { oidcSchema, type OidcConfig } from '../../../src/config/schema.js';
import { freePort, startOidcProvider, type TestProvider } from '../../support/oidc-provider.js';

const AUDIENCE = 'urn:tallenne:api';
const REDIRECT = 'http://127.0.0.1:9/api/v1/auth/oidc/callback';
const SECRET = 'client-secret-'.padEnd(40, 'x');

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

function configFor(issuer: string, extra: Record<string, unknown> = {}): OidcConfig {
  return oidcSchema.parse({ issuer, client_id: 'tallenne', redirect_url: REDIRECT, audience: AUDIENCE, scopes: ['openid', 'profile', 'tallenne'], ...extra });
}

function provider(service: { roles?: string[]; teams?: string[] }, port?: number): Promise<TestProvider> {
  return startOidcProvider({
    accounts: { sanna: { password: 'pw-sanna', roles: ['supervisor'], teams: ['helpdesk'] } },
    clientId: 'tallenne',
    clientSecret: SECRET,
    redirectUri: REDIRECT,
    audience: AUDIENCE,
    service,
    ...(port !== undefined ? { port } : {}),
  });
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(ApiError);
  return e as ApiError;
}

describe('the OIDC relying party against a real provider', () => {
  let idp: TestProvider;
  let other: TestProvider;
  let rp: OidcClient;

  beforeAll(async () => {
    idp = await provider({ roles: ['quality', 'auditor'], teams: ['billing'] });
    other = await provider({ roles: ['admin'] });
    rp = new OidcClient(configFor(idp.issuer), SECRET, capturingLogger().log);
    rp.start();
    await rp.whenReady;
  });
  afterAll(async () => {
    rp?.close();
    await idp?.close();
    await other?.close();
  });

  it('discovers the provider', () => {
    expect(rp.ready).toBe(true);
    expect(rp.status()).toBe('ok');
  });

  it('accepts the provider\'s access token as a Bearer token, with roles and teams from its claims', async () => {
    const identity = await rp.verifyBearer(await idp.serviceAccessToken());
    expect(identity).toMatchObject({ name: 'service', roles: ['quality'], teams: ['billing'], via: 'oidc' });
    expect(identity!.expiresAt).toBeGreaterThan(Date.now());
  });

  it('refuses an access token of another provider', async () => {
    const e = await apiError(rp.verifyBearer(await other.serviceAccessToken()));
    expect(e.code).toBe('API_INVALID_TOKEN');
    expect(e.status).toBe(401);
  });

  it('refuses the provider\'s token once altered', async () => {
    const [h, p, s] = (await idp.serviceAccessToken()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['admin', 'dpo'] })).toString('base64url');
    expect((await apiError(rp.verifyBearer(`${h}.${forged}.${s}`))).code).toBe('API_INVALID_TOKEN');
  });

  it('leaves tokens that are not JWTs to the other verifiers', async () => {
    await expect(rp.verifyBearer('tln.0123456789abcdef.' + 'A'.repeat(43))).resolves.toBeNull();
  });

  it('starts a login with state, nonce and an S256 PKCE challenge, and keeps the verifier server-side', async () => {
    const { url, preLoginId } = await rp.beginLogin();
    expect(url.origin).toBe(idp.issuer);
    const q = url.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('tallenne');
    expect(q.get('redirect_uri')).toBe(REDIRECT);
    expect(q.get('scope')).toBe('openid profile tallenne');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toBeTruthy();
    expect(q.get('nonce')).toBeTruthy();
    expect(q.has('code_verifier')).toBe(false);
    expect(url.href).not.toContain(preLoginId);
    expect(preLoginId).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses a callback without a login started from that browser', async () => {
    const e = await rp.finishLogin(undefined, 'code=abc&state=xyz').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(OidcLoginError);
    expect((e as OidcLoginError).code).toBe('no-login-in-progress');
    const unknown = await rp.finishLogin('not-a-login', 'code=abc&state=xyz').catch((err: unknown) => err);
    expect((unknown as OidcLoginError).code).toBe('no-login-in-progress');
  });

  it('refuses a callback whose state does not match, and the pre-login state is used once', async () => {
    const { url, preLoginId } = await rp.beginLogin();
    const wrong = await rp.finishLogin(preLoginId, `code=abc&state=other&iss=${encodeURIComponent(idp.issuer)}`).catch((err: unknown) => err);
    expect((wrong as OidcLoginError).code).toBe('response-invalid');
    const again = await rp.finishLogin(preLoginId, `code=abc&state=${url.searchParams.get('state')}&iss=${encodeURIComponent(idp.issuer)}`).catch((err: unknown) => err);
    expect((again as OidcLoginError).code).toBe('no-login-in-progress');
  });

  it('reports the provider\'s refusal (the user declined)', async () => {
    const { url, preLoginId } = await rp.beginLogin();
    const q = new URLSearchParams({ error: 'access_denied', state: url.searchParams.get('state')!, iss: idp.issuer });
    const e = await rp.finishLogin(preLoginId, q.toString()).catch((err: unknown) => err);
    expect((e as OidcLoginError).code).toBe('provider-refused');
  });

  it('refuses a valid access token that carries no tallenne role', async () => {
    const noRole = await provider({ roles: ['viewer'] });
    const rp2 = new OidcClient(configFor(noRole.issuer), SECRET, capturingLogger().log);
    try {
      rp2.start();
      await rp2.whenReady;
      const e = await apiError(rp2.verifyBearer(await noRole.serviceAccessToken()));
      expect(e.code).toBe('API_FORBIDDEN');
    } finally {
      rp2.close();
      await noRole.close();
    }
  });

  it('refuses a provider access token for another audience', async () => {
    const rp3 = new OidcClient(configFor(idp.issuer, { audience: 'urn:another:api' }), SECRET, capturingLogger().log);
    try {
      rp3.start();
      await rp3.whenReady;
      const e = await apiError(rp3.verifyBearer(await idp.serviceAccessToken()));
      expect(e.code).toBe('API_INVALID_TOKEN');
      expect(e.message).toMatch(/another audience/);
    } finally {
      rp3.close();
    }
  });
});

describe('a provider that cannot be reached at start', () => {
  it('is reported, logged, retried, and used once it answers', async () => {
    const port = await freePort();
    const { log, lines } = capturingLogger();
    const rp = new OidcClient(configFor(`http://127.0.0.1:${port}`), SECRET, log, { retryMinMs: 50, retryMaxMs: 200 });
    let idp: TestProvider | undefined;
    try {
      rp.start();
      await expect.poll(() => lines.some((l) => l.msg === 'OIDC discovery failed; single sign-on is unavailable until the provider answers')).toBe(true);
      expect(rp.ready).toBe(false);
      expect(rp.status()).toMatch(/^provider not reachable \(.*ECONNREFUSED.*\); retrying$/);
      expect((await apiError(rp.verifyBearer('eyJhbGciOiJSUzI1NiJ9.e30.c2ln'))).code).toBe('API_UNAVAILABLE');
      await expect(rp.beginLogin()).rejects.toMatchObject({ code: 'unavailable' });

      idp = await provider({ roles: ['agent'] }, port);
      await rp.whenReady;
      expect(rp.status()).toBe('ok');
      expect(lines.filter((l) => l.msg === 'OIDC discovery failed; single sign-on is unavailable until the provider answers').length).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(lines)).not.toContain(SECRET);
      await expect(rp.verifyBearer(await idp.serviceAccessToken())).resolves.toMatchObject({ roles: ['agent'] });
    } finally {
      rp.close();
      await idp?.close();
    }
  });
});

describe('the client secret file', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tallenne-oidc-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read when only its owner may read it', () => {
    const f = join(dir, 'secret');
    writeFileSync(f, `${SECRET}\n`, { mode: 0o600 });
    chmodSync(f, 0o600);
    expect(readClientSecret(f)).toBe(SECRET);
  });

  it.each([0o644, 0o640])('is refused when group or others may read it (mode %o)', (mode) => {
    const f = join(dir, `open-${mode.toString(8)}`);
    writeFileSync(f, SECRET);
    chmodSync(f, mode);
    expect(() => readClientSecret(f)).toThrow(`auth.oidc.client_secret_file: ${f} is open to group or others (mode ${mode.toString(8)}); a key file must be private: chmod 600 ${f}`);
    expect(() => readClientSecret(f)).toThrow(expect.objectContaining({ code: 'TALLENNE_KEY_FILE_INSECURE' }) as Error);
  });

  it('is refused when empty or missing', () => {
    const f = join(dir, 'empty');
    writeFileSync(f, '\n', { mode: 0o600 });
    chmodSync(f, 0o600);
    expect(() => readClientSecret(f)).toThrow(/is empty/);
    expect(() => readClientSecret(join(dir, 'absent'))).toThrow(/ENOENT/);
  });
});

describe('the [auth.oidc] schema', () => {
  it('takes the documented defaults', () => {
    const c = configFor('https://idp.example.net');
    expect(c).toMatchObject({ role_claim: 'roles', team_claim: 'teams', agent_claim: 'agent_id', name_claim: 'preferred_username', algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'] });
    expect(c.clock_tolerance.ms).toBe(30_000);
  });

  it('refuses plain http to a remote provider, "none" as an algorithm, and scopes without openid', () => {
    expect(oidcSchema.safeParse({ issuer: 'http://idp.example.net', client_id: 'x', redirect_url: REDIRECT }).success).toBe(false);
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.net', client_id: 'x', redirect_url: REDIRECT, algorithms: ['none'] }).success).toBe(false);
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.net', client_id: 'x', redirect_url: REDIRECT, algorithms: ['HS256'] }).success).toBe(false);
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.net', client_id: 'x', redirect_url: REDIRECT, scopes: ['profile'] }).success).toBe(false);
    expect(oidcSchema.safeParse({ issuer: 'https://idp.example.net', client_id: 'x', redirect_url: REDIRECT, team: 'x' }).success).toBe(false);
  });
});
