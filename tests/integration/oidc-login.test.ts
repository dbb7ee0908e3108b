/**
 * Single sign-on end to end: the real daemon, a real oidc-provider on loopback, and Debian's
 * Chromium driven by playwright-core. A supervisor logs in at the provider; the session's
 * roles and team come from the provider's claims; the call their team recorded during the
 * test is in the list and another team's is not. A user without a tallenne role is refused
 * and audited. The provider's access token works as a Bearer token; one from a second
 * provider is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page, Response as PwResponse } from 'playwright-core';
import { CHROMIUM, launchBrowser, type BrowserHandle } from '../support/browser.js';
import { BIN, makeConfig, randomRtpRange, removeDir, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { freePort, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { recordCall } from '../support/recorded-call.js';
import { AGENTS_TOML } from '../support/api-fixture.js';

const AUDIENCE = 'urn:tallenne:api';
const CLIENT_SECRET = 'oidc-client-secret-'.padEnd(48, 'q');
const PASSWORD = 'correct horse';
const CUSTOMER = '+358401234567';

/** The daemon's config with [auth.oidc] towards `issuer`, HTTP on a port fixed beforehand. */
function oidcDaemonConfig(dir: string, httpPort: number, issuer: string): string {
  const secretFile = join(dir, 'oidc-client-secret');
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
  chmodSync(secretFile, 0o600);
  const text = makeConfig(dir, randomRtpRange(), `${AGENTS_TOML}
[auth.oidc]
issuer = "${issuer}"
client_id = "tallenne"
client_secret_file = "${secretFile}"
redirect_url = "http://127.0.0.1:${httpPort}/api/v1/auth/oidc/callback"
scopes = ["openid", "profile", "tallenne"]
audience = "${AUDIENCE}"
`);
  return text.replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:${httpPort}"`);
}

function auditEntries(d: DaemonHandle): Array<{ actor: string; action: string; details?: Record<string, unknown> }> {
  return JSON.parse(execFileSync(process.execPath, [BIN, 'audit', 'list', '--json', '--config', d.configFile], { encoding: 'utf8' })) as Array<{ actor: string; action: string; details?: Record<string, unknown> }>;
}

/**
 * Starts the SSO login from the daemon, signs in at the provider's login page, and resolves
 * with the daemon's answer to the provider's redirect back (the callback).
 */
async function signInAtProvider(page: Page, base: string, login: string): Promise<PwResponse> {
  await page.goto(`${base}/api/v1/auth/oidc/login`);
  await page.getByLabel('Name').fill(login);
  await page.getByLabel('Password').fill(PASSWORD);
  const callback = page.waitForResponse((r) => r.url().startsWith(`${base}/api/v1/auth/oidc/callback?`));
  await page.getByRole('button', { name: 'Sign in' }).click();
  return callback;
}

function inPage<T>(page: Page, path: string, init: { headers?: Record<string, string> } = {}): Promise<{ status: number; body: T }> {
  return page.evaluate(async ({ path, init }) => {
    const r = await fetch(path, init);
    return { status: r.status, body: await r.json() };
  }, { path, init }) as Promise<{ status: number; body: T }>;
}

interface Me { name: string; roles: string[]; teams: string[]; via: string }
interface List { items: Array<{ id: string }> }

describe.skipIf(!existsSync(CHROMIUM))('single sign-on with OpenID Connect', () => {
  let d: DaemonHandle;
  let idp: TestProvider;
  let other: TestProvider;
  let base: string;
  let ownTeamCall: string;
  let otherTeamCall: string;
  let browser: BrowserHandle;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tallenne-it-'));
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    const common = {
      accounts: {
        sanna: { password: PASSWORD, roles: ['supervisor', 'not-a-role'], teams: ['helpdesk'] },
        ville: { password: PASSWORD, roles: ['visitor'], teams: ['helpdesk'] },
      },
      clientId: 'tallenne',
      clientSecret: CLIENT_SECRET,
      redirectUri: `${base}/api/v1/auth/oidc/callback`,
      audience: AUDIENCE,
    };
    idp = await startOidcProvider({ ...common, service: { roles: ['quality'] } });
    other = await startOidcProvider({ ...common, service: { roles: ['quality', 'admin'] } });
    d = await startDaemon({ dir, configText: oidcDaemonConfig(dir, httpPort, idp.issuer) });
    await d.waitForLog((l) => l.msg === 'OIDC provider discovered; single sign-on is available');
    ownTeamCall = await recordCall(d, CUSTOMER, '1001', 1000);
    otherTeamCall = await recordCall(d, CUSTOMER, '1003', 1000);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await d?.kill();
    await idp?.close();
    await other?.close();
    if (d) removeDir(d.dir);
  });

  it('tells the page that SSO is configured, and /readyz reports the provider', async () => {
    const cfg = (await (await fetch(`${base}/api/v1/auth/config`)).json()) as { oidc: boolean; oidcAvailable: boolean };
    expect(cfg).toEqual({ oidc: true, oidcAvailable: true });
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { status: string; checks: Record<string, string> };
    expect(ready.status).toBe('ready');
    expect(ready.checks.oidc).toBe('ok');
  });

  it('logs a supervisor in through the provider in a real browser, with role and team from claims', async () => {
    const page = await browser.freshPage();
    const callback = await signInAtProvider(page, base, 'sanna');
    expect(callback.status()).toBe(303);
    expect(callback.headers().location).toBe('/');
    await page.waitForURL((u) => u.origin === base && u.pathname === '/');
    const cookies = await browser.context.cookies(base);
    const session = cookies.find((c) => c.name === 'tallenne_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(cookies.some((c) => c.name === 'tallenne_oidc_login')).toBe(false);

    const me = await inPage<Me>(page, '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ name: 'sanna', roles: ['supervisor'], via: 'oidc' });
    expect(me.body.teams).toContain('helpdesk');

    const list = await inPage<List>(page, '/api/v1/recordings');
    expect(list.status).toBe(200);
    const ids = list.body.items.map((i) => i.id);
    expect(ids).toContain(ownTeamCall);
    expect(ids).not.toContain(otherTeamCall);
    const login = auditEntries(d).find((e) => e.action === 'login' && e.actor === 'oidc:sanna');
    expect(login?.details).toMatchObject({ via: 'oidc', roles: 'supervisor' });

    // Logging in again (the provider remembers her) gives a new session and ends the old one.
    const again = page.waitForResponse((r) => r.url().startsWith(`${base}/api/v1/auth/oidc/callback?`));
    await page.goto(`${base}/api/v1/auth/oidc/login`);
    expect((await again).headers().location).toBe('/');
    await page.waitForURL((u) => u.origin === base && u.pathname === '/');
    const renewed = (await browser.context.cookies(base)).find((c) => c.name === 'tallenne_session');
    expect(renewed!.value).not.toBe(session!.value);
    expect((await inPage<Me>(page, '/api/v1/me')).status).toBe(200);
    const old = await fetch(`${base}/api/v1/me`, { headers: { cookie: `tallenne_session=${session!.value}` } });
    expect(old.status).toBe(401);
  });

  it('refuses a user whose claims carry no tallenne role, and audits it', async () => {
    // Another person at the same browser: neither the daemon's nor the provider's session remains.
    const page = await browser.freshPage();
    const callback = await signInAtProvider(page, base, 'ville');
    expect(callback.status()).toBe(303);
    expect(callback.headers().location).toBe('/?login_error=no-role');
    await page.waitForURL((u) => u.origin === base && u.pathname === '/');
    expect((await browser.context.cookies(base)).some((c) => c.name === 'tallenne_session')).toBe(false);
    const me = await inPage<{ error: { code: string } }>(page, '/api/v1/me');
    expect(me.status).toBe(401);
    expect(me.body.error.code).toBe('API_UNAUTHENTICATED');
    const failed = auditEntries(d).filter((e) => e.action === 'login-failed' && e.details?.why === 'no-role');
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed[0]).toMatchObject({ actor: 'oidc:ville', details: { via: 'oidc', roles: '-' } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^tallenne_oidc_logins_total\{result="ok"\} 2$/m);
    expect(metrics).toMatch(/^tallenne_oidc_logins_total\{result="no-role"\} 1$/m);
  });

  it('refuses a callback that no login of this browser started', async () => {
    const res = await fetch(`${base}/api/v1/auth/oidc/callback?code=forged&state=forged`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/?login_error=no-login-in-progress');
    expect(res.headers.get('set-cookie') ?? '').not.toContain('tallenne_session=');
  });

  it('accepts the provider\'s access token as a Bearer token', async () => {
    const token = await idp.serviceAccessToken();
    const res = await fetch(`${base}/api/v1/recordings`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const ids = ((await res.json()) as List).items.map((i) => i.id);
    expect(ids).toEqual(expect.arrayContaining([ownTeamCall, otherTeamCall]));
    const me = (await (await fetch(`${base}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as Me;
    expect(me).toMatchObject({ roles: ['quality'], via: 'oidc' });
  });

  it('refuses an access token from a second provider, and a tampered one', async () => {
    const foreign = await other.serviceAccessToken();
    const res = await fetch(`${base}/api/v1/recordings`, { headers: { authorization: `Bearer ${foreign}` } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('API_INVALID_TOKEN');

    const [h, p, s] = (await idp.serviceAccessToken()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, roles: ['dpo'] })).toString('base64url')}.${s}`;
    const res2 = await fetch(`${base}/api/v1/recordings`, { headers: { authorization: `Bearer ${tampered}` } });
    expect(res2.status).toBe(401);
    const body = JSON.stringify(await res2.json());
    expect(body).toContain('API_INVALID_TOKEN');
    expect(body).not.toMatch(/at |\.ts:|\.js:/);
  });
});

describe('an identity provider that is down when the daemon starts', () => {
  let d: DaemonHandle | undefined;
  let idp: TestProvider | undefined;
  afterAll(async () => {
    await d?.kill();
    await idp?.close();
    if (d) removeDir(d.dir);
  });

  it('does not stop recording; /readyz reports it; discovery is retried until the provider answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tallenne-it-'));
    const [httpPort, idpPort] = [await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${idpPort}`;
    d = await startDaemon({ dir, configText: oidcDaemonConfig(dir, httpPort, issuer) });
    await d.waitForLog((l) => l.msg === 'OIDC discovery failed; single sign-on is unavailable until the provider answers');

    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: Record<string, string> };
    expect(body.status).toBe('ready');
    expect(body.checks.oidc).toMatch(/^provider not reachable .*; retrying$/);
    const cfg = (await (await fetch(`http://127.0.0.1:${httpPort}/api/v1/auth/config`)).json()) as { oidc: boolean; oidcAvailable: boolean };
    expect(cfg).toEqual({ oidc: true, oidcAvailable: false });
    const login = await fetch(`http://127.0.0.1:${httpPort}/api/v1/auth/oidc/login`, { redirect: 'manual' });
    expect(login.headers.get('location')).toBe('/?login_error=unavailable');

    const id = await recordCall(d, CUSTOMER, '1001', 1000);
    expect(id).toMatch(/\S/);

    idp = await startOidcProvider({
      accounts: {}, clientId: 'tallenne', clientSecret: CLIENT_SECRET, audience: AUDIENCE, port: idpPort,
      redirectUri: `http://127.0.0.1:${httpPort}/api/v1/auth/oidc/callback`,
    });
    await d.waitForLog((l) => l.msg === 'OIDC provider discovered; single sign-on is available', 90_000);
    const after = (await (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json()) as { checks: Record<string, string> };
    expect(after.checks.oidc).toBe('ok');
    expect(d.output()).not.toContain(CLIENT_SECRET);
  });
});
