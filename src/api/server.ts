/**
 * The HTTP server: /metrics, /healthz and /readyz as before, the recordings API under
 * /api/v1, and the web page at /. Built with fastify: route groups are plugins with zod
 * schemas (validated, typed, and the source of /api/v1/openapi.json), every error leaves as
 * `{ "error": { "code", "message" } }` through one handler, with body limits, a rate limit per
 * identity and security headers.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import { hasZodFastifySchemaValidationErrors, jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { TallenneError } from '../errors.js';
import { ActionInputError } from '../retention/actions.js';
import type { Metrics } from './metrics.js';
import { ApiError, fromCoreError, type ApiErrorBody } from './errors.js';
import { ApiMetrics } from './api-metrics.js';
import { routeOf } from './auth/authenticate.js';
import type { ApiDeps } from './deps.js';
import type { HttpsGuard } from './https.js';
import type { TlsMaterial } from '../tls/material.js';
import { sessionRoutes } from './routes/session.js';
import { meRoutes } from './routes/me.js';
import { recordingRoutes } from './routes/recordings.js';
import { audioRoutes } from './routes/audio.js';
import { exportRoutes } from './routes/exports.js';
import { actionRoutes } from './routes/actions.js';
import { auditRoutes } from './routes/audit.js';
import { accessReviewRoutes } from './routes/access-review.js';
import { callRoutes } from './routes/calls.js';
import { listenRoutes } from './routes/listen.js';
import { oidcRoutes } from './auth/oidc-routes.js';
import { webPage } from './routes/web.js';

export const API_PREFIX = '/api/v1';

export interface ServerDeps extends ApiDeps {
  readonly metrics: Metrics;
  readonly ready: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
}

/** HTTPS for the main listener: the guard that owns its TLS rules, and the material. */
export interface ServerTls {
  readonly guard: HttpsGuard;
  readonly material: TlsMaterial;
}

/** The main listener: health, metrics, the API and the page; over HTTPS when `tls` is given. */
export async function buildServer(deps: ServerDeps, tls?: ServerTls): Promise<FastifyInstance> {
  const c = deps.config();
  const app = Fastify({
    ...(tls ? { https: tls.guard.options(tls.material) } : {}),
    logger: false,
    bodyLimit: c.api.body_limit,
    // Ids are matched by schema; these keep odd paths from reaching a handler unnormalised.
    routerOptions: { maxParamLength: 256, ignoreTrailingSlash: false },
    return503OnClosing: true,
    forceCloseConnections: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Typed as plain HTTP either way: routes never see the difference but request.protocol.
  if (tls) tls.guard.attach(app as unknown as FastifyInstance);
  const apiMetrics = new ApiMetrics(deps.metrics.registry);
  app.decorateRequest('identity', null);
  app.decorateRequest('sessionKey', '');

  installErrorHandling(app, deps, apiMetrics);
  healthRoutes(app, deps, true);

  await app.register(fastifyCookie);
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        mediaSrc: ["'self'"],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // The page loads only its own files; audio is same-origin.
    crossOriginEmbedderPolicy: false,
    // Sent by the HTTPS guard, over HTTPS only, with the configured max-age.
    hsts: false,
  });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'tallenne recordings API', version: '1' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A `tallenne tokens create` token, or an access token of the configured OpenID provider' },
          session: { type: 'apiKey', in: 'cookie', name: 'tallenne_session', description: 'The page session (POST /api/v1/session); state-changing requests also need X-CSRF-Token' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });

  await app.register(
    async (api) => {
      api.addHook('onRequest', async (request, reply) => {
        if (request.routeOptions.config?.public) return;
        await deps.auth.authenticate(request, reply);
      });
      await api.register(fastifyRateLimit, {
        hook: 'preHandler',
        max: (request: FastifyRequest) => (request.identity ? deps.config().api.rate_limit : deps.config().api.login_rate_limit),
        timeWindow: 60_000,
        keyGenerator: (request: FastifyRequest) => (request.identity ? `id:${request.identity.name}` : `ip:${request.ip}`),
        errorResponseBuilder: () => new ApiError('API_RATE_LIMITED'),
      });
      api.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
      const routes = [sessionRoutes, meRoutes, recordingRoutes, audioRoutes, exportRoutes, actionRoutes, auditRoutes, accessReviewRoutes, callRoutes, listenRoutes, oidcRoutes];
      for (const r of routes) await api.register(r, deps);
    },
    { prefix: API_PREFIX },
  );
  await app.register(webPage, {});
  return app;
}

/** The optional separate metrics listener ([metrics] listen): /metrics only. */
export async function buildMetricsServer(deps: Pick<ServerDeps, 'metrics' | 'ready' | 'log'>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  healthRoutes(app, deps, false);
  app.setNotFoundHandler((_req, reply) => plain(reply, 404, 'not found\n'));
  return app;
}

/** /metrics (both listeners), /healthz and /readyz (main listener only), as they always were. */
function healthRoutes(app: FastifyInstance, deps: Pick<ServerDeps, 'metrics' | 'ready' | 'log'>, full: boolean): void {
  const routes: Record<string, (reply: FastifyReply) => Promise<unknown> | unknown> = {
    '/metrics': async (reply) => {
      try {
        const text = await deps.metrics.text();
        reply.code(200).header('content-type', deps.metrics.contentType()).send(text);
      } catch (err) {
        deps.log.error({ err }, 'collecting metrics failed');
        plain(reply, 500, 'metrics unavailable\n');
      }
    },
  };
  if (full) {
    routes['/healthz'] = (reply) => json(reply, 200, { status: 'alive' });
    routes['/readyz'] = async (reply) => {
      const r = await deps.ready();
      json(reply, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', checks: r.checks });
    };
  }
  for (const [url, handler] of Object.entries(routes)) {
    app.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
      url,
      schema: { hide: true },
      handler: async (request, reply) => {
        if (request.method !== 'GET' && request.method !== 'HEAD') return plain(reply, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
        return handler(reply);
      },
    });
  }
}

function plain(reply: FastifyReply, status: number, body: string, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(status).headers({ 'content-type': 'text/plain; charset=utf-8', ...headers }).send(body);
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(`${JSON.stringify(body)}\n`);
}

/** Fastify's own request errors, as API codes. */
const FASTIFY_CODES: Record<string, ApiError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'API_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'API_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'API_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'API_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'API_BAD_REQUEST',
  FST_ERR_BAD_URL: 'API_BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'API_BAD_REQUEST',
  FST_ERR_VALIDATION: 'API_BAD_REQUEST',
};

/** Maps anything thrown to an ApiError; unknown errors become API_INTERNAL (logged, never sent). */
export function toApiError(err: unknown): { error: ApiError; unexpected: boolean } {
  if (err instanceof ApiError) return { error: err, unexpected: false };
  if (err instanceof TallenneError) return { error: fromCoreError(err), unexpected: fromCoreError(err).code === 'API_INTERNAL' };
  if (err instanceof ActionInputError) return { error: new ApiError('API_BAD_REQUEST', err.message), unexpected: false };
  if (hasZodFastifySchemaValidationErrors(err)) {
    const first = err.validation[0];
    const where = first?.instancePath ? ` at ${first.instancePath}` : '';
    return { error: new ApiError('API_BAD_REQUEST', `${err.validationContext ?? 'request'}${where}: ${first?.message ?? 'invalid'}`), unexpected: false };
  }
  const fe = err as FastifyError;
  if (typeof fe?.code === 'string' && FASTIFY_CODES[fe.code]) return { error: new ApiError(FASTIFY_CODES[fe.code]!), unexpected: false };
  if (err instanceof SyntaxError && (fe as { statusCode?: number }).statusCode === 400) return { error: new ApiError('API_MALFORMED_JSON'), unexpected: false };
  if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return { error: new ApiError('API_BAD_REQUEST'), unexpected: false };
  return { error: new ApiError('API_INTERNAL'), unexpected: true };
}

function installErrorHandling(app: FastifyInstance, deps: ApiDeps, m: ApiMetrics): void {
  app.setErrorHandler(async (err, request, reply) => {
    const { error, unexpected } = toApiError(err);
    if (unexpected) deps.log.error({ err, route: routeOf(request) }, 'API request failed');
    m.refused(routeOf(request), error.code);
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    const body: ApiErrorBody = { error: { code: error.code, message: error.message } };
    if (error.code === 'API_UNAUTHENTICATED' || error.code === 'API_INVALID_TOKEN') reply.header('www-authenticate', 'Bearer');
    return reply.code(error.status).type('application/json').send(body);
  });
  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
      m.refused('unmatched', 'API_ROUTE_NOT_FOUND');
      return reply.code(404).type('application/json').send({ error: { code: 'API_ROUTE_NOT_FOUND', message: 'no such API route' } } satisfies ApiErrorBody);
    }
    return plain(reply, 404, 'not found\n');
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.url.startsWith(API_PREFIX)) m.answered(routeOf(request), reply.statusCode);
  });
}
