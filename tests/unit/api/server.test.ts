/**
 * The API through fastify.inject(): authentication (tokens, sessions, CSRF), clean errors for
 * bad input, audio with Range/ETag and one audit entry per play, peaks, exports, the
 * OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearer, startApiFixture, type ApiFixture } from '../../support/api-fixture.js';

let f: ApiFixture;
beforeAll(async () => {
  f = await startApiFixture();
}, 60_000);
afterAll(async () => {
  await f?.close();
});

function expectCleanError(res: { statusCode: number; body: string; headers: Record<string, unknown> }, status: number, code: string): void {
  expect(res.statusCode).toBe(status);
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(res.body).not.toMatch(/\bat .+\.(js|ts):\d+/); // no stack trace
  expect(res.body).not.toContain(f.dir);
}

describe('authentication', () => {
  it('refuses a request without credentials, with a malformed, unknown, revoked or expired token, and a disabled user', async () => {
    expectCleanError(await f.app.inject({ url: '/api/v1/me' }), 401, 'API_UNAUTHENTICATED');
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: { authorization: 'Basic abc' } }), 401, 'API_INVALID_TOKEN');
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer('tln.zz.short') }), 401, 'API_INVALID_TOKEN');
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer(`tln.0123456789abcdef.${'A'.repeat(43)}`) }), 401, 'API_INVALID_TOKEN');
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer('garbage') }), 401, 'API_INVALID_TOKEN');

    await f.index.users.addUser({ name: 'temp', roles: ['quality'], teams: [] });
    const revoked = await f.index.users.createToken('temp', undefined);
    expect((await f.app.inject({ url: '/api/v1/me', headers: bearer(revoked.token) })).statusCode).toBe(200);
    await f.index.users.revokeToken(revoked.record.id);
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer(revoked.token) }), 401, 'API_INVALID_TOKEN');

    const expired = await f.index.users.createToken('temp', new Date(Date.now() - 1000).toISOString());
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer(expired.token) }), 401, 'API_INVALID_TOKEN');

    const live = await f.index.users.createToken('temp', undefined);
    await f.index.users.disableUser('temp');
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: bearer(live.token) }), 401, 'API_USER_DISABLED');

    const failed = f.index.audit.list({ limit: 10_000 }).filter((e) => e.action === 'login-failed');
    expect(failed.length).toBeGreaterThanOrEqual(8);
    expect(failed.every((e) => e.details?.client === '127.0.0.1')).toBe(true);
  });

  it('/me gives roles, scope and what the roles may do', async () => {
    const res = await f.app.inject({ url: '/api/v1/me', headers: bearer(f.tokens.supervisor) });
    const me = res.json() as { name: string; roles: string[]; teams: string[]; may: string[]; via: string };
    expect(me).toMatchObject({ name: 'supervisor-user', roles: ['supervisor'], via: 'token' });
    expect(me.teams.sort()).toEqual(['helpdesk']);
    expect(me.may).toEqual(expect.arrayContaining(['list', 'audio', 'export', 'hold']));
    expect(me.may).not.toContain('erase');
    const maint = (await f.app.inject({ url: '/api/v1/me', headers: bearer(f.tokens.maintainer) })).json() as { reasonRequiredFor: string[] };
    expect(maint.reasonRequiredFor).toEqual(expect.arrayContaining(['audio', 'export']));
  });

  it('session: login by token sets an HttpOnly SameSite=Strict cookie; state changes need the CSRF token; logout ends it', async () => {
    const login = await f.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: f.tokens.supervisor } });
    expect(login.statusCode).toBe(200);
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).toMatch(/^tallenne_session=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).not.toMatch(/Secure/i); // plain HTTP here; Secure when the listener is TLS
    const { csrfToken, me } = login.json() as { csrfToken: string; me: { name: string; via: string } };
    expect(me).toMatchObject({ name: 'supervisor-user', via: 'session' });
    const cookie = setCookie.split(';')[0]!;

    // A page opened later (a new tab, or after SSO) learns the session's CSRF token from /me;
    // a bearer caller has no session and gets none.
    const meNow = await f.app.inject({ url: '/api/v1/me', headers: { cookie } });
    expect(meNow.statusCode).toBe(200);
    expect(meNow.json()).toMatchObject({ csrfToken });
    expect(Object.keys((await f.app.inject({ url: '/api/v1/me', headers: { authorization: `Bearer ${f.tokens.supervisor}` } })).json())).not.toContain('csrfToken');
    const hold = { method: 'POST' as const, url: `/api/v1/recordings/${f.ids.team}/hold`, payload: { reason: 'complaint 12' } };
    expectCleanError(await f.app.inject({ ...hold, headers: { cookie } }), 403, 'API_CSRF');
    expectCleanError(await f.app.inject({ ...hold, headers: { cookie, 'x-csrf-token': 'wrong' } }), 403, 'API_CSRF');
    const ok = await f.app.inject({ ...hold, headers: { cookie, 'x-csrf-token': csrfToken } });
    expect(ok.statusCode).toBe(200);
    expect((ok.json() as { hold: { reason: string; by: string } }).hold).toMatchObject({ reason: 'complaint 12', by: 'supervisor-user' });
    const rel = await f.app.inject({ method: 'DELETE', url: `/api/v1/recordings/${f.ids.team}/hold`, headers: { cookie, 'x-csrf-token': csrfToken } });
    expect(rel.statusCode).toBe(200);

    const out = await f.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie, 'x-csrf-token': csrfToken } });
    expect(out.statusCode).toBe(200);
    expectCleanError(await f.app.inject({ url: '/api/v1/me', headers: { cookie } }), 401, 'API_SESSION_EXPIRED');

    const bad = await f.app.inject({ method: 'POST', url: '/api/v1/session', payload: { token: 'tln.nope' } });
    expectCleanError(bad, 401, 'API_INVALID_TOKEN');
    const actions = f.index.audit.list({ limit: 10_000 }).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['login', 'logout', 'hold', 'release', 'login-failed']));
  });
});

describe('bad input gets a clean 4xx with a code', () => {
  const auth = () => bearer(f.tokens.dpo);
  it('malformed JSON, an over-limit body, unknown fields, a wrong content type', async () => {
    const url = `/api/v1/recordings/${f.ids.own}/hold`;
    expectCleanError(await f.app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/json' }, payload: '{"reason":' }), 400, 'API_MALFORMED_JSON');
    expectCleanError(await f.app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/json' }, payload: JSON.stringify({ reason: 'x'.repeat(8000) }) }), 413, 'API_BODY_TOO_LARGE');
    expectCleanError(await f.app.inject({ method: 'POST', url, headers: auth(), payload: { reason: 'r', extra: 1 } }), 400, 'API_BAD_REQUEST');
    expectCleanError(await f.app.inject({ method: 'POST', url, headers: { ...auth(), 'content-type': 'application/xml' }, payload: '<reason/>' }), 415, 'API_UNSUPPORTED_MEDIA_TYPE');
    expectCleanError(await f.app.inject({ url: '/api/v1/recordings?frobnicate=1', headers: auth() }), 400, 'API_BAD_REQUEST');
    expectCleanError(await f.app.inject({ url: '/api/v1/recordings?number=1001', headers: auth() }), 400, 'API_BAD_REQUEST');
    expectCleanError(await f.app.inject({ url: '/api/v1/recordings?cursor=notacursor', headers: bearer(f.tokens.quality) }), 404, 'API_NOT_FOUND');
  });

  it('ids with ../, NUL or %2e%2e, and unknown routes', async () => {
    for (const id of ['..%2F..%2Fetc%2Fpasswd', '%2e%2e', '%2E%2E%2Fdata', 'a%00b', '..', 'x%20y']) {
      const res = await f.app.inject({ url: `/api/v1/recordings/${id}/audio`, headers: auth() });
      expect([400, 404]).toContain(res.statusCode);
      expect(JSON.parse(res.body).error.code).toMatch(/^API_/);
      expect(res.body).not.toContain('root:');
    }
    expectCleanError(await f.app.inject({ url: '/api/v1/recordings/01NOSUCHRECORDING/audio', headers: auth() }), 404, 'API_NOT_FOUND');
    expectCleanError(await f.app.inject({ url: '/api/v1/nothing-here', headers: auth() }), 404, 'API_ROUTE_NOT_FOUND');
  });
});

describe('audio', () => {
  it('serves ranges that join into the file, 206 with Content-Range, 416 past the end, ETag and 304, private caching', async () => {
    const url = `/api/v1/recordings/${f.ids.own}/audio`;
    const whole = await f.app.inject({ url, headers: bearer(f.tokens.agent) });
    expect(whole.statusCode).toBe(200);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.headers['cache-control']).toBe('private, no-cache');
    expect(whole.headers['content-type']).toMatch(/^audio\/ogg/);
    const file = whole.rawPayload;
    expect(file.length).toBe(f.audioBytes);
    expect(file.subarray(0, 4).toString()).toBe('OggS');

    const cuts = [0, 1000, Math.floor(file.length / 2), file.length];
    const parts: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await f.app.inject({ url, headers: { ...bearer(f.tokens.agent), range: `bytes=${cuts[i]}-${cuts[i + 1]! - 1}` } });
      expect(r.statusCode).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${cuts[i]}-${cuts[i + 1]! - 1}/${file.length}`);
      parts.push(r.rawPayload);
    }
    expect(Buffer.concat(parts).equals(file)).toBe(true);

    const past = await f.app.inject({ url, headers: { ...bearer(f.tokens.agent), range: `bytes=${file.length + 10}-` } });
    expectCleanError(past, 416, 'API_BAD_RANGE');
    expect(past.headers['content-range']).toBe(`bytes */${file.length}`);

    const etag = String(whole.headers.etag);
    expect((await f.app.inject({ url, headers: { ...bearer(f.tokens.agent), 'if-none-match': etag } })).statusCode).toBe(304);
  });

  it('audits one play per recording per login, however many ranges the player asks for', async () => {
    const url = `/api/v1/recordings/${f.ids.team}/audio`;
    const plays = () => f.index.audit.list({ limit: 100_000 }).filter((e) => e.action === 'play' && e.recordingId === f.ids.team && e.actor === 'quality-user');
    const before = plays().length;
    for (const range of ['bytes=0-99', 'bytes=100-', 'bytes=-50']) {
      expect((await f.app.inject({ url, headers: { ...bearer(f.tokens.quality), range } })).statusCode).toBe(206);
    }
    const after = plays();
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)!.details).toMatchObject({ role: 'quality', client: '127.0.0.1', via: 'token' });
  });

  it('refuses another team, and a maintainer without a reason; the query form of the reason works', async () => {
    expectCleanError(await f.app.inject({ url: `/api/v1/recordings/${f.ids.other}/audio`, headers: bearer(f.tokens.agent) }), 403, 'API_FORBIDDEN');
    expectCleanError(await f.app.inject({ url: `/api/v1/recordings/${f.ids.other}/audio`, headers: bearer(f.tokens.maintainer) }), 403, 'API_REASON_REQUIRED');
    const ok = await f.app.inject({ url: `/api/v1/recordings/${f.ids.other}/audio?reason=ticket%20881`, headers: bearer(f.tokens.maintainer) });
    expect(ok.statusCode).toBe(200);
    const play = f.index.audit.list({ limit: 100_000 }).filter((e) => e.action === 'play' && e.actor === 'maintainer-user').at(-1)!;
    expect(play).toMatchObject({ recordingId: f.ids.other, reason: 'ticket 881' });
    const denied = f.index.audit.list({ limit: 100_000 }).filter((e) => e.action === 'denied' && e.actor === 'agent-user');
    expect(denied.at(-1)).toMatchObject({ recordingId: f.ids.other, details: { attempted: 'audio' } });
  });

  it('peaks: two channels of min/max per 20 ms in -1..1, the customer tone on the left', async () => {
    const res = await f.app.inject({ url: `/api/v1/recordings/${f.ids.own}/peaks`, headers: bearer(f.tokens.agent) });
    expect(res.statusCode).toBe(200);
    const p = res.json() as { intervalMs: number; durationMs: number; channels: Array<{ role: string; min: number[]; max: number[] }> };
    expect(p.intervalMs).toBe(20);
    expect(Math.abs(p.durationMs - 3000)).toBeLessThan(100);
    expect(p.channels.map((c) => c.role)).toEqual(['customer', 'agent']);
    for (const c of p.channels) {
      expect(c.min.length).toBe(c.max.length);
      expect(Math.abs(c.min.length - 150)).toBeLessThanOrEqual(5);
      // ffmpeg's sine source has amplitude 1/8.
      expect(Math.max(...c.max)).toBeGreaterThan(0.08);
      expect(Math.min(...c.min)).toBeLessThan(-0.08);
      expect(c.max.every((v) => v >= -1 && v <= 1)).toBe(true);
    }
    const again = await f.app.inject({ url: `/api/v1/recordings/${f.ids.own}/peaks`, headers: bearer(f.tokens.agent) });
    expect(again.body).toBe(res.body);
  });

  it('exports WAV and MP3 for roles that may export, not for quality', async () => {
    const wav = await f.app.inject({ url: `/api/v1/recordings/${f.ids.team}/audio?format=wav`, headers: bearer(f.tokens.supervisor) });
    expect(wav.statusCode).toBe(200);
    expect(wav.headers['content-type']).toBe('audio/wav');
    expect(wav.rawPayload.subarray(0, 4).toString()).toBe('RIFF');
    expect(wav.rawPayload.subarray(8, 12).toString()).toBe('WAVE');
    const mp3 = await f.app.inject({ url: `/api/v1/recordings/${f.ids.team}/audio?format=mp3`, headers: bearer(f.tokens.supervisor) });
    expect(mp3.statusCode).toBe(200);
    expect(mp3.headers['content-type']).toBe('audio/mpeg');
    expect(mp3.rawPayload.length).toBeGreaterThan(1000);
    expectCleanError(await f.app.inject({ url: `/api/v1/recordings/${f.ids.team}/audio?format=wav`, headers: bearer(f.tokens.quality) }), 403, 'API_FORBIDDEN');
    expect(execFileSync('ls', [join(f.config.storage.dir, 'tmp')], { encoding: 'utf8' }).trim()).toBe('');
  });
});

describe('bulk export', () => {
  it('a ZIP with exactly the permitted entries, a manifest and matching SHA-256; refused over [api] max_export', async () => {
    const res = await f.app.inject({ method: 'POST', url: '/api/v1/exports', headers: bearer(f.tokens.supervisor), payload: { from: '2026-11-20' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    const zip = join(f.dir, 'out.zip');
    writeFileSync(zip, res.rawPayload);
    const manifest = JSON.parse(execFileSync('unzip', ['-p', zip, 'manifest.json'], { encoding: 'utf8' })) as {
      count: number;
      exportedBy: string;
      entries: Array<{ recording: { id: string }; audio: { path: string; sha256: string; bytes: number } }>;
    };
    expect(manifest.exportedBy).toBe('supervisor-user');
    expect(manifest.entries.map((e) => e.recording.id).sort()).toEqual([f.ids.own, f.ids.team].sort());
    for (const e of manifest.entries) {
      const bytes = execFileSync('unzip', ['-p', zip, e.audio.path], { maxBuffer: 1 << 26 });
      expect(bytes.length).toBe(e.audio.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(e.audio.sha256);
      const stored = readFileSync(join(f.config.storage.dir, f.index.get(e.recording.id)!.file));
      expect(bytes.equals(stored)).toBe(true);
    }
    const exported = f.index.audit.list({ limit: 100_000 }).filter((e) => e.action === 'export' && e.details?.batch !== undefined);
    expect(exported.map((e) => e.recordingId).sort()).toEqual([f.ids.own, f.ids.team].sort());

    const over = await f.app.inject({ method: 'POST', url: '/api/v1/exports', headers: bearer(f.tokens.security), payload: { reason: 'police request 5' } });
    expectCleanError(over, 422, 'API_TOO_MANY_RECORDINGS');
    expectCleanError(await f.app.inject({ method: 'POST', url: '/api/v1/exports', headers: bearer(f.tokens.quality), payload: {} }), 403, 'API_FORBIDDEN');
  });
});

describe('OpenAPI', () => {
  it('documents every API route from the route schemas', async () => {
    const doc = (await f.app.inject({ url: '/api/v1/openapi.json' })).json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const [path, method] of [
      ['/api/v1/recordings', 'get'], ['/api/v1/recordings/{id}', 'get'], ['/api/v1/recordings/{id}', 'delete'], ['/api/v1/recordings/{id}', 'patch'],
      ['/api/v1/recordings/{id}/audio', 'get'], ['/api/v1/recordings/{id}/peaks', 'get'], ['/api/v1/recordings/{id}/hold', 'post'],
      ['/api/v1/recordings/{id}/hold', 'delete'], ['/api/v1/exports', 'post'], ['/api/v1/audit', 'get'], ['/api/v1/audit/verify', 'get'],
      ['/api/v1/me', 'get'], ['/api/v1/access-review', 'get'], ['/api/v1/session', 'post'], ['/api/v1/session', 'delete'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
  });
});

describe('register actions, audit and access review', () => {
  it('rectifies (a customer number is stored masked), then erases with a reason; the audio file goes', async () => {
    const id = f.ids.other;
    const patch = await f.app.inject({ method: 'PATCH', url: `/api/v1/recordings/${id}`, headers: bearer(f.tokens.dpo), payload: { reason: 'subject request 9', fields: { trunk: 'trunk-b', customerNumber: '040 999 8887' } } });
    expect(patch.statusCode).toBe(200);
    expect(patch.json()).toMatchObject({ customerNumber: '+358409998***' });
    expect(patch.body).not.toContain('9998887');
    expectCleanError(await f.app.inject({ method: 'PATCH', url: `/api/v1/recordings/${id}`, headers: bearer(f.tokens.dpo), payload: { fields: { file: 'x' } } }), 400, 'API_BAD_REQUEST');
    expectCleanError(await f.app.inject({ method: 'PATCH', url: `/api/v1/recordings/${id}`, headers: bearer(f.tokens.security), payload: { reason: 'r', fields: { trunk: 'x' } } }), 403, 'API_FORBIDDEN');

    const file = join(f.config.storage.dir, f.index.get(id)!.file);
    expectCleanError(await f.app.inject({ method: 'DELETE', url: `/api/v1/recordings/${id}`, headers: bearer(f.tokens.dpo) }), 403, 'API_REASON_REQUIRED');
    const del = await f.app.inject({ method: 'DELETE', url: `/api/v1/recordings/${id}?reason=erasure%20request`, headers: bearer(f.tokens.dpo) });
    expect(del.statusCode).toBe(200);
    expect(f.index.get(id)).toBeUndefined();
    expect(() => readFileSync(file)).toThrow();
    expectCleanError(await f.app.inject({ url: `/api/v1/recordings/${id}`, headers: bearer(f.tokens.dpo) }), 404, 'API_NOT_FOUND');
    const entries = f.index.audit.list({ limit: 100_000 }).filter((e) => e.recordingId === id && (e.action === 'erase' || e.action === 'rectify'));
    expect(entries.map((e) => e.action)).toEqual(['rectify', 'erase']);
    expect(entries.every((e) => e.actor === 'dpo-user' && e.details?.role === 'dpo' && e.details?.client === '127.0.0.1')).toBe(true);
  });

  it('audit: pages for security and the DPO, verify for security only', async () => {
    const page = await f.app.inject({ url: '/api/v1/audit?limit=3', headers: bearer(f.tokens.dpo) });
    expect(page.statusCode).toBe(200);
    const body = page.json() as { items: Array<{ seq: number }>; nextAfter: number };
    expect(body.items.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(body.nextAfter).toBe(3);
    const next = (await f.app.inject({ url: `/api/v1/audit?after=${body.nextAfter}&limit=1`, headers: bearer(f.tokens.dpo) })).json() as { items: Array<{ seq: number }> };
    expect(next.items[0]!.seq).toBe(4);
    expect((await f.app.inject({ url: '/api/v1/audit/verify', headers: bearer(f.tokens.security) })).json()).toMatchObject({ ok: true });
    expectCleanError(await f.app.inject({ url: '/api/v1/audit/verify', headers: bearer(f.tokens.dpo) }), 403, 'API_FORBIDDEN');
  });

  it('access review: every user with roles, scope, tokens and last use, for admins only', async () => {
    const res = await f.app.inject({ url: '/api/v1/access-review', headers: bearer(f.tokens.admin) });
    expect(res.statusCode).toBe(200);
    const r = res.json() as { reviewAfterDays: number; users: Array<{ name: string; teams: string[]; lastUsedAt: string | null; unused: boolean; tokens: unknown[] }> };
    expect(r.reviewAfterDays).toBe(90);
    const sup = r.users.find((u) => u.name === 'supervisor-user')!;
    expect(sup.teams).toEqual(['helpdesk']);
    expect(sup.lastUsedAt).not.toBeNull();
    expect(sup.unused).toBe(false);
    expect(sup.tokens).toHaveLength(1);
    expect(res.body).not.toMatch(/tln\./);
    expectCleanError(await f.app.inject({ url: '/api/v1/access-review', headers: bearer(f.tokens.security) }), 403, 'API_FORBIDDEN');
  });
});
