/**
 * The web page at `/`: the files Vite built into dist/web (`npm run build:web`, run by
 * `prepare` and `pretest`). Only the files present at start are routes, so any other path
 * falls through to the API's JSON 404. Every answer carries a Content-Security-Policy that
 * allows nothing but this origin (no inline script or style, no outside request, no framing).
 * Assets have a content hash in their name and are cached for a year; index.html is
 * revalidated on every load, so a new build is picked up at once.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import fastifyStatic from '@fastify/static';
import { ApiError } from '../errors.js';

/** Where the build puts the page: <repo>/dist/web, from src/api/routes or dist/api/routes alike. */
export const WEB_ROOT = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "media-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Hashed build outputs (Vite's assetsDir): safe to keep forever. */
const HASHED = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const LONG = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export interface WebPageOptions {
  /** The built page; defaults to dist/web. */
  readonly root?: string;
}

/** The page's fastify plugin. Register it at the server's top level, next to /api/v1. */
export const webPage: FastifyPluginAsync<WebPageOptions> = async (app, opts) => {
  const root = opts.root ?? WEB_ROOT;
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('content-security-policy', PAGE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    if (reply.statusCode < 400) reply.header('cache-control', HASHED.test(request.url) ? LONG : REVALIDATE);
    else reply.header('cache-control', 'no-store');
    return payload;
  });
  if (!existsSync(join(root, 'index.html'))) {
    app.log.warn({ root }, 'the web page is not built (npm run build); / answers 503');
    app.get('/', { schema: { hide: true } }, async () => {
      throw new ApiError('API_UNAVAILABLE', 'the web page is not built: run npm run build');
    });
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // One route per built file (and `/` for index.html) instead of a catch-all.
    wildcard: false,
    index: ['index.html'],
    cacheControl: false,
    etag: true,
    lastModified: true,
    dotfiles: 'deny',
    serveDotFiles: false,
  });
};
