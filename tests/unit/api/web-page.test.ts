/**
 * The web page plugin through fastify.inject(): content types, the CSP on every answer, long
 * caching only for hashed assets, nothing but the built files routed, and a clean 503 when
 * the page was never built.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { webPage, PAGE_CSP } from '../../../src/api/routes/web.js';
import { ApiError } from '../../../src/api/errors.js';
import { removeDir } from '../../support/daemon.js';

const JS = 'index-B3twFH-M.js';
const CSS = 'index-k1Wwjlxg.css';

async function server(root: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.setErrorHandler((e, _req, reply) => {
    if (e instanceof ApiError) void reply.status(e.status).send({ error: { code: e.code, message: e.message } });
    else void reply.status(500).send({ error: { code: 'API_INTERNAL', message: 'internal error' } });
  });
  await app.register(webPage, { root });
  app.get('/api/v1/ping', async () => ({ ok: true }));
  await app.ready();
  return app;
}

describe('webPage', () => {
  let dir: string;
  let app: FastifyInstance;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tallenne-web-'));
    mkdirSync(join(dir, 'built', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'built', 'index.html'), `<!doctype html><script type="module" src="/assets/${JS}"></script>`);
    writeFileSync(join(dir, 'built', 'assets', JS), 'export {};\n');
    writeFileSync(join(dir, 'built', 'assets', CSS), 'body{}\n');
    app = await server(join(dir, 'built'));
  });
  afterAll(async () => {
    await app?.close();
    removeDir(dir);
  });

  it('serves index.html at / with the strict CSP, revalidated on every load', async () => {
    const r = await app.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(PAGE_CSP);
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.body).toContain(`/assets/${JS}`);
    const again = await app.inject({ method: 'GET', url: '/', headers: { 'if-none-match': String(r.headers.etag) } });
    expect(again.statusCode).toBe(304);
  });

  it('the CSP allows this origin only: no inline code, no other host, no framing', () => {
    const directives = new Map(PAGE_CSP.split('; ').map((d) => [d.split(' ')[0]!, d.split(' ').slice(1)]));
    expect(directives.get('default-src')).toEqual(["'self'"]);
    for (const [name, sources] of directives) {
      for (const s of sources) expect(["'self'", "'none'"], `${name} ${s}`).toContain(s);
    }
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(directives.get('object-src')).toEqual(["'none'"]);
  });

  it('serves hashed assets with their types, cached for a year', async () => {
    const js = await app.inject({ method: 'GET', url: `/assets/${JS}` });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^(text|application)\/javascript; charset=utf-8$/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const css = await app.inject({ method: 'GET', url: `/assets/${CSS}` });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const head = await app.inject({ method: 'HEAD', url: `/assets/${JS}` });
    expect(head.statusCode).toBe(200);
  });

  it('routes only the built files: other paths and traversal fall through to 404', async () => {
    for (const url of ['/assets/nope-12345678.js', '/../package.json', '/assets/..%2f..%2fpackage.json', '/%2e%2e/etc/passwd', '/index.html%00']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(404);
      expect(String(r.headers['cache-control'] ?? ''), url).not.toContain('max-age=31536000');
    }
    expect((await app.inject({ method: 'GET', url: '/api/v1/ping' })).json()).toEqual({ ok: true });
  });

  it('answers / with a clean 503 when the page was never built', async () => {
    const bare = await server(join(dir, 'missing'));
    try {
      const r = await bare.inject({ method: 'GET', url: '/' });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toEqual({ error: { code: 'API_UNAVAILABLE', message: 'the web page is not built: run npm run build' } });
      expect(r.headers['content-security-policy']).toBe(PAGE_CSP);
    } finally {
      await bare.close();
    }
  });
});
