/**
 * The page's login with an API token: POST /session `{ "token": "..." }` checks the token
 * like a bearer token, opens a server-side session (cookie `tallenne_session`) and answers
 * `{ csrfToken, me }`; DELETE /session logs out. Both are audited.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { clearSessionCookie, SESSION_COOKIE, setSessionCookie } from '../auth/session.js';
import { errorSchema, okSchema, sessionBody, sessionReply } from '../schemas.js';
import { meOf } from './me.js';

export const sessionRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.post(
    '/session',
    {
      config: { public: true },
      schema: {
        summary: 'Log in with an API token: sets the session cookie',
        tags: ['session'],
        body: sessionBody,
        response: { 200: sessionReply, 401: errorSchema },
      },
    },
    async (request, reply) => {
      deps.auth.refuseIfThrottled(request);
      let identity;
      try {
        identity = await deps.auth.verifyBearer(request.body.token);
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        await deps.auth.failed(request, e.code, { via: 'token' });
        throw e;
      }
      const created = deps.sessions.createSession(identity);
      setSessionCookie(request, reply, created);
      deps.auth.noteUse(identity);
      await deps.audit.record(request, identity, { action: 'login', details: { via: 'token' } });
      reply.header('cache-control', 'no-store');
      return { csrfToken: created.csrfToken, me: meOf(deps.sessions.get(created.value)!.identity) };
    },
  );

  app.delete(
    '/session',
    {
      schema: { summary: 'Log out: ends the session and clears the cookie', tags: ['session'], response: { 200: okSchema } },
    },
    async (request, reply) => {
      const cookie = request.cookies[SESSION_COOKIE];
      if (cookie !== undefined) deps.sessions.destroy(cookie);
      clearSessionCookie(request, reply);
      await deps.audit.record(request, request.identity ?? undefined, { action: 'logout' });
      return { ok: true as const };
    },
  );
};
