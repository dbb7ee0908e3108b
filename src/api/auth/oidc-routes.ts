/**
 * Single sign-on routes, registered under /api/v1 (all public: they run before a session
 * exists):
 *
 * - GET /auth/config: whether SSO is configured and available now (the page shows the
 *   button from it);
 * - GET /auth/oidc/login: starts the authorisation-code flow with PKCE and redirects the
 *   browser to the provider; the state, nonce and code verifier stay on the server under a
 *   random pre-login id held by a short-lived cookie (SameSite=Lax: it must come back on the
 *   provider's cross-site redirect);
 * - GET /auth/oidc/callback: completes the login, opens the page's session and redirects to
 *   `/`; a failed login is audited and sent to `/?login_error=CODE`.
 *
 * Registering the plugin also makes the API accept the provider's access tokens as Bearer
 * tokens (the verifier is added to the Authenticator).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/cookie';
import { Counter } from 'prom-client';
import { z } from 'zod';
import type { ServerDeps } from '../server.js';
import { SESSION_COOKIE, setSessionCookie } from './session.js';
import { OidcLoginError, PRE_LOGIN_TTL_MS, type OidcClient } from './oidc.js';

export const PRE_LOGIN_COOKIE = 'tallenne_oidc_login';

const authConfigReply = z.strictObject({
  /** `[auth.oidc]` is configured: the page offers SSO. */
  oidc: z.boolean(),
  /** The provider has answered discovery: a login can start now. */
  oidcAvailable: z.boolean(),
});

export const oidcRoutes: FastifyPluginAsync<ServerDeps> = async (app, deps) => {
  const oidc = deps.oidc;
  if (oidc) {
    deps.auth.registerBearerVerifier(async (token) => {
      const identity = await oidc.verifyBearer(token);
      return identity && deps.auth.withScope(identity);
    });
  }

  app.get('/auth/config', {
    config: { public: true },
    schema: { summary: 'How the page may log in: whether single sign-on is configured and available', tags: ['session'], response: { 200: authConfigReply } },
  }, async () => ({ oidc: oidc !== undefined, oidcAvailable: oidc?.ready ?? false }));

  if (!oidc) return;
  const logins = new Counter({
    name: 'tallenne_oidc_logins_total',
    help: 'Single sign-on logins by result: ok, or why not (no-role, provider-refused, response-invalid, no-login-in-progress, unavailable).',
    labelNames: ['result'],
    registers: [deps.metrics.registry],
  });
  logins.inc({ result: 'ok' }, 0);
  const cookiePath = new URL(oidc.config.redirect_url).pathname;
  const secure = (request: FastifyRequest) => request.protocol === 'https' || oidc.config.redirect_url.startsWith('https:');

  app.get('/auth/oidc/login', {
    config: { public: true },
    schema: { summary: 'Single sign-on: redirects the browser to the identity provider (authorisation code with PKCE)', tags: ['session'] },
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    let started: Awaited<ReturnType<OidcClient['beginLogin']>>;
    try {
      started = await oidc.beginLogin();
    } catch (e) {
      return failed(request, reply, e);
    }
    reply.setCookie(PRE_LOGIN_COOKIE, started.preLoginId, {
      path: cookiePath,
      httpOnly: true,
      sameSite: 'lax',
      secure: secure(request),
      maxAge: PRE_LOGIN_TTL_MS / 1000,
    });
    return reply.redirect(started.url.href, 302);
  });

  app.get('/auth/oidc/callback', {
    config: { public: true },
    schema: { summary: 'Single sign-on: where the provider returns the browser; opens the session and redirects to /', tags: ['session'] },
  }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    reply.clearCookie(PRE_LOGIN_COOKIE, { path: cookiePath, httpOnly: true, sameSite: 'lax', secure: secure(request) });
    const raw = request.raw.url ?? '';
    const query = raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : '';
    let identity;
    try {
      identity = deps.auth.withScope(await oidc.finishLogin(request.cookies?.[PRE_LOGIN_COOKIE], query));
    } catch (e) {
      return failed(request, reply, e);
    }
    // A session this browser held before is ended: the login always gets a new one.
    const earlier = request.cookies?.[SESSION_COOKIE];
    if (earlier) deps.sessions.destroy(earlier);
    const created = deps.sessions.createSession(identity);
    setSessionCookie(request, reply, created);
    deps.auth.noteUse(identity);
    logins.inc({ result: 'ok' });
    await deps.audit.record(request, identity, { action: 'login' });
    return reply.redirect('/', 303);
  });

  /** A login that could not start or finish: audited, logged by code, and the page told why. */
  async function failed(request: FastifyRequest, reply: FastifyReply, e: unknown): Promise<FastifyReply> {
    if (!(e instanceof OidcLoginError)) throw e;
    deps.log.warn({ why: e.code, detail: e.detail }, 'single sign-on login failed');
    logins.inc({ result: e.code });
    const who = e.user !== undefined ? { name: e.user, roles: [], teams: [], via: 'oidc' as const } : undefined;
    await deps.audit.record(request, who, { action: 'login-failed', details: { via: 'oidc', why: e.code } });
    return reply.redirect(`/?login_error=${encodeURIComponent(e.code)}`, 303);
  }
};
