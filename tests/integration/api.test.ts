/**
 * The recordings API against the real daemon over real sockets: calls recorded in the test
 * for three agents (two in one team), users and tokens made with the CLI, then every role
 * against own, team and other recordings for every action (allowed exactly where the roles
 * table says, audited either way); Range joins and a cold seek; the bulk export ZIP; and bad
 * input answered with clean 4xx codes while a call in progress keeps recording.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { BIN, removeDir, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { recordCall, startCall } from '../support/recorded-call.js';
import { sleep } from '../support/legs.js';
import { ROLES, type AccessRole } from '../../src/access/roles.js';
import { AGENTS_TOML } from '../support/api-fixture.js';

const CUSTOMER = '+358405556667';
const CUSTOMER_NATIONAL = '040 555 6667';
const CONFIG = `
[api]
max_export = 50
body_limit = "2KiB"
${AGENTS_TOML}`;
const REASON = 'ticket 4711';
const execFileAsync = promisify(execFile);

let d: DaemonHandle;
let base: string;
const tokens = {} as Record<AccessRole, string>;
const ids = { own: '', team: '', other: '' };

/**
 * The CLI, run without blocking the event loop: a blocked loop would keep HTTP clients from
 * retiring idle keep-alive sockets that the daemon closes meanwhile.
 */
async function cli(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile, '--actor', 'test-admin'], { encoding: 'utf8' });
  return stdout;
}

function headers(role: AccessRole, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${tokens[role]}`, 'x-tallenne-reason': REASON, ...extra };
}

interface AuditRow {
  seq: number;
  actor: string;
  action: string;
  recordingId?: string;
  reason?: string;
  details?: Record<string, unknown>;
}

async function lastSeq(): Promise<number> {
  const v = (await (await fetch(`${base}/api/v1/audit/verify`, { headers: headers('security') })).json()) as { ok: boolean; entries: number };
  expect(v.ok).toBe(true);
  return v.entries;
}

async function auditAfter(seq: number): Promise<AuditRow[]> {
  const r = await fetch(`${base}/api/v1/audit?after=${seq}&limit=1000`, { headers: headers('security') });
  return ((await r.json()) as { items: AuditRow[] }).items;
}

/** A raw request (no URL normalisation: `..` and `%2e` reach the server as written). */
function raw(method: string, path: string, hdrs: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: d.httpPort, method, path, headers: hdrs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function expectClean(r: { status: number; body: string }, status: number, code: string): void {
  expect(r.status, r.body).toBe(status);
  const b = JSON.parse(r.body) as { error: { code: string; message: string } };
  expect(b.error.code).toBe(code);
  expect(r.body).not.toMatch(/\bat .+\.(js|ts):\d+/);
  expect(r.body).not.toContain(d.dir);
}

beforeAll(async () => {
  d = await startDaemon({ extraToml: CONFIG });
  base = `http://127.0.0.1:${d.httpPort}`;
  ids.own = await recordCall(d, CUSTOMER, '1001', 1500);
  ids.team = await recordCall(d, CUSTOMER, '1002', 1500);
  ids.other = await recordCall(d, CUSTOMER, '1003', 1500);
  for (const role of ROLES) {
    const agent = role === 'agent' ? ['--agent', 'aino'] : role === 'supervisor' ? ['--agent', 'sari'] : [];
    await cli('users', 'add', `${role}-user`, '--role', role, ...agent);
    tokens[role] = (await cli('tokens', 'create', `${role}-user`)).trim();
  }
}, 90_000);

afterAll(async () => {
  await d?.kill();
  if (d) removeDir(d.dir);
});

type Which = 'own' | 'team' | 'other';
type Action = 'list' | 'show' | 'audio' | 'peaks' | 'export' | 'bulk-export' | 'hold' | 'erase' | 'rectify' | 'subject-search' | 'audit' | 'users';

/** The roles table of the issue, per action: which of own / team / other (or '*' for actions without a recording). */
const ALLOWED: Record<AccessRole, Partial<Record<Action, readonly Which[] | '*'>>> = {
  agent: { list: ['own'], show: ['own'], audio: ['own'], peaks: ['own'] },
  supervisor: { list: ['own', 'team'], show: ['own', 'team'], audio: ['own', 'team'], peaks: ['own', 'team'], export: ['own', 'team'], 'bulk-export': ['own', 'team'], hold: ['own', 'team'] },
  quality: { list: ['own', 'team', 'other'], show: ['own', 'team', 'other'], audio: ['own', 'team', 'other'], peaks: ['own', 'team', 'other'] },
  maintainer: { list: ['own', 'team', 'other'], show: ['own', 'team', 'other'], audio: ['own', 'team', 'other'], peaks: ['own', 'team', 'other'], export: ['own', 'team', 'other'], 'bulk-export': ['own', 'team', 'other'] },
  security: { list: ['own', 'team', 'other'], show: ['own', 'team', 'other'], audio: ['own', 'team', 'other'], peaks: ['own', 'team', 'other'], export: ['own', 'team', 'other'], 'bulk-export': ['own', 'team', 'other'], hold: ['own', 'team', 'other'], audit: '*' },
  dpo: { show: ['own', 'team', 'other'], audio: ['own', 'team', 'other'], peaks: ['own', 'team', 'other'], export: ['own', 'team', 'other'], 'bulk-export': ['own', 'team', 'other'], hold: ['own', 'team', 'other'], erase: ['own', 'team', 'other'], rectify: ['own', 'team', 'other'], 'subject-search': '*', audit: '*' },
  admin: { users: '*' },
};

const WHICH: readonly Which[] = ['own', 'team', 'other'];

describe('roles × actions against the running daemon', () => {
  for (const role of ROLES) {
    it(`${role}: allowed exactly where the roles table says, audited either way`, async () => {
      const want = ALLOWED[role];
      const h = headers(role);
      const check = async (action: Action, which: Which | '*', attempt: () => Promise<{ allowed: boolean; status: number }>) => {
        const before = await lastSeq();
        const { allowed, status } = await attempt();
        const should = which === '*' ? want[action] === '*' : (want[action] as readonly Which[] | undefined)?.includes(which) ?? false;
        expect(allowed, `${role} ${action} ${which}: status ${status}`).toBe(should);
        const written = (await auditAfter(before)).filter((e) => e.actor === `${role}-user`);
        expect(written.length, `${role} ${action} ${which} audited`).toBeGreaterThan(0);
        // A refusal is a 'denied' entry; a bulk export leaves out what the caller may not
        // export, and its 'export-bulk' entry counts only what went in.
        if (!should) expect(written.some((e) => e.action === 'denied' || (action === 'bulk-export' && e.action === 'export-bulk'))).toBe(true);
        // A bulk export is decided for the search as a whole, then per recording.
        if (which !== '*' && action !== 'bulk-export') expect(written.some((e) => e.recordingId === ids[which])).toBe(true);
        if (should && (role === 'maintainer' || role === 'security')) expect(written.some((e) => e.reason === REASON)).toBe(true);
      };
      const status = (r: Response, ok = 200) => ({ allowed: r.status === ok, status: r.status });

      // list: the recordings the caller may see appear; others never do.
      const listed = await (async () => {
        const before = await lastSeq();
        const r = await fetch(`${base}/api/v1/recordings?limit=100`, { headers: h });
        const items = r.ok ? ((await r.json()) as { items: Array<{ id: string }> }).items.map((i) => i.id) : [];
        const written = (await auditAfter(before)).filter((e) => e.actor === `${role}-user`);
        expect(written.length).toBeGreaterThan(0);
        return { status: r.status, items };
      })();
      for (const which of WHICH) {
        const should = (want.list as readonly Which[] | undefined)?.includes(which) ?? false;
        expect(listed.items.includes(ids[which]), `${role} list ${which}`).toBe(should);
      }
      if (!want.list) expect(listed.status).toBe(403);

      for (const which of WHICH) {
        const id = ids[which];
        await check('show', which, async () => status(await fetch(`${base}/api/v1/recordings/${id}`, { headers: h })));
        await check('audio', which, async () => {
          const r = await fetch(`${base}/api/v1/recordings/${id}/audio`, { headers: { ...h, range: 'bytes=0-99' } });
          await r.arrayBuffer();
          return status(r, 206);
        });
        await check('peaks', which, async () => status(await fetch(`${base}/api/v1/recordings/${id}/peaks`, { headers: h })));
        await check('export', which, async () => {
          const r = await fetch(`${base}/api/v1/recordings/${id}/audio?format=wav`, { headers: h });
          const body = Buffer.from(await r.arrayBuffer());
          if (r.ok) expect(body.subarray(0, 4).toString()).toBe('RIFF');
          return status(r);
        });
        await check('bulk-export', which, async () => {
          const r = await fetch(`${base}/api/v1/exports`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ agent: { own: 'aino', team: 'bertta', other: 'cecilia' }[which] }) });
          if (r.status !== 200) return status(r);
          const zip = join(d.dir, `${role}-${which}.zip`);
          writeFileSync(zip, Buffer.from(await r.arrayBuffer()));
          const m = JSON.parse(execFileSync('unzip', ['-p', zip, 'manifest.json'], { encoding: 'utf8' })) as { entries: Array<{ recording: { id: string } }> };
          return { allowed: m.entries.some((e) => e.recording.id === id), status: r.status };
        });
        await check('hold', which, async () => {
          const r = await fetch(`${base}/api/v1/recordings/${id}/hold`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'complaint' }) });
          if (r.ok) expect((await fetch(`${base}/api/v1/recordings/${id}/hold`, { method: 'DELETE', headers: h })).status).toBe(200);
          return status(r);
        });
        await check('rectify', which, async () => {
          const r = await fetch(`${base}/api/v1/recordings/${id}`, { method: 'PATCH', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'subject request', fields: { trunk: 'trunk-a' } }) });
          return status(r);
        });
        // Erasure: the access decision, then the retention decision. A hold keeps the
        // recording, so an allowed erasure is refused by the register (409), never 403.
        await check('erase', which, async () => {
          const held = await fetch(`${base}/api/v1/recordings/${id}/hold`, { method: 'POST', headers: { ...headers('dpo'), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'keep for the test' }) });
          expect(held.status).toBe(200);
          const r = await fetch(`${base}/api/v1/recordings/${id}?reason=${encodeURIComponent('erasure request')}`, { method: 'DELETE', headers: { authorization: h.authorization! } });
          const body = (await r.json()) as { error?: { code: string } };
          await fetch(`${base}/api/v1/recordings/${id}/hold`, { method: 'DELETE', headers: headers('dpo') });
          return { allowed: r.status === 409 && body.error?.code === 'API_ERASURE_REFUSED', status: r.status };
        });
      }
      await check('subject-search', '*', async () => {
        const r = await fetch(`${base}/api/v1/recordings?number=${encodeURIComponent(CUSTOMER_NATIONAL)}`, { headers: h });
        if (r.ok) expect(((await r.json()) as { items: Array<{ id: string }> }).items.map((i) => i.id).sort()).toEqual(Object.values(ids).sort());
        return status(r);
      });
      await check('audit', '*', async () => status(await fetch(`${base}/api/v1/audit?limit=5`, { headers: h })));
      await check('users', '*', async () => status(await fetch(`${base}/api/v1/access-review`, { headers: h })));
    }, 120_000);
  }

  it('the audit chain still verifies; the access review lists every user with last use', async () => {
    const v = (await (await fetch(`${base}/api/v1/audit/verify`, { headers: headers('security') })).json()) as { ok: boolean };
    expect(v.ok).toBe(true);
    const review = (await (await fetch(`${base}/api/v1/access-review`, { headers: headers('admin') })).json()) as { users: Array<{ name: string; lastUsedAt: string | null; unused: boolean }> };
    expect(review.users.map((u) => u.name).sort()).toEqual(ROLES.map((r) => `${r}-user`).sort());
    expect(review.users.every((u) => u.lastUsedAt !== null && !u.unused)).toBe(true);
  });
});

describe('audio over real sockets', () => {
  it('three arbitrary byte ranges joined equal the file; a seek to the middle works from a cold start', async () => {
    const show = (await (await fetch(`${base}/api/v1/recordings/${ids.own}`, { headers: headers('quality') })).json()) as { file: string };
    const file = readFileSync(join(d.dir, 'data', show.file));
    const a = Math.floor(file.length / 3) + 7;
    const b = Math.floor((2 * file.length) / 3) - 5;
    const parts: Buffer[] = [];
    for (const range of [`bytes=0-${a - 1}`, `bytes=${a}-${b - 1}`, `bytes=${b}-`]) {
      const r = await fetch(`${base}/api/v1/recordings/${ids.own}/audio`, { headers: { ...headers('quality'), range } });
      expect(r.status).toBe(206);
      expect(r.headers.get('accept-ranges')).toBe('bytes');
      parts.push(Buffer.from(await r.arrayBuffer()));
    }
    expect(Buffer.concat(parts).equals(file)).toBe(true);

    // A new login whose first request is a seek into the middle.
    await cli('users', 'add', 'cold-listener', '--role', 'quality');
    const cold = (await cli('tokens', 'create', 'cold-listener')).trim();
    const mid = Math.floor(file.length / 2);
    const r = await fetch(`${base}/api/v1/recordings/${ids.own}/audio`, { headers: { authorization: `Bearer ${cold}`, range: `bytes=${mid}-` } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes ${mid}-${file.length - 1}/${file.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(file.subarray(mid))).toBe(true);
  });
});

describe('bulk export', () => {
  it('the ZIP opens, the manifest lists exactly the permitted entries, and the hashes match', async () => {
    const r = await fetch(`${base}/api/v1/exports`, { method: 'POST', headers: { ...headers('supervisor'), 'content-type': 'application/json' }, body: '{}' });
    expect(r.status).toBe(200);
    const zip = join(d.dir, 'export.zip');
    writeFileSync(zip, Buffer.from(await r.arrayBuffer()));
    const names = execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).trim().split('\n').sort();
    expect(names).toEqual(['manifest.json', `audio/${ids.own}.opus`, `audio/${ids.team}.opus`].sort());
    const m = JSON.parse(execFileSync('unzip', ['-p', zip, 'manifest.json'], { encoding: 'utf8' })) as { entries: Array<{ recording: { id: string; file: string }; audio: { path: string; sha256: string } }> };
    expect(m.entries.map((e) => e.recording.id).sort()).toEqual([ids.own, ids.team].sort());
    for (const e of m.entries) {
      const inZip = execFileSync('unzip', ['-p', zip, e.audio.path], { maxBuffer: 1 << 26 });
      const onDisk = readFileSync(join(d.dir, 'data', e.recording.file));
      expect(createHash('sha256').update(inZip).digest('hex')).toBe(e.audio.sha256);
      expect(createHash('sha256').update(onDisk).digest('hex')).toBe(e.audio.sha256);
    }
  });
});

describe('bad input while a call is being recorded', () => {
  it('answers every bad request with a clean 4xx and a code, and the call in progress is recorded whole', async () => {
    const live = await startCall(d, CUSTOMER, '1001');
    const startedAt = Date.now();
    const auth = { authorization: `Bearer ${tokens.dpo}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const hold = `/api/v1/recordings/${ids.own}/hold`;

    expectClean(await raw('POST', hold, json, '{"reason": "x",'), 400, 'API_MALFORMED_JSON');
    expectClean(await raw('POST', hold, json, JSON.stringify({ reason: 'x'.repeat(5000) })), 413, 'API_BODY_TOO_LARGE');
    expectClean(await raw('POST', hold, json, JSON.stringify({ reason: 'x', sneaky: true })), 400, 'API_BAD_REQUEST');
    expectClean(await raw('PATCH', `/api/v1/recordings/${ids.own}`, json, JSON.stringify({ fields: { file: '../../etc/passwd' } })), 400, 'API_BAD_REQUEST');
    for (const path of ['/api/v1/recordings/../../../etc/passwd', '/api/v1/recordings/..%2F..%2Fetc%2Fpasswd/audio', '/api/v1/recordings/%2e%2e/audio', '/api/v1/recordings/%2e%2e%2f%2e%2e/audio', '/api/v1/recordings/a%00b/audio', '/api/v1/recordings/%00/peaks']) {
      const r = await raw('GET', path, auth);
      expect([400, 404], `${path}: ${r.status}`).toContain(r.status);
      expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toMatch(/^API_/);
      expect(r.body).not.toContain('root:');
    }
    const size = Number((await raw('GET', `/api/v1/recordings/${ids.own}/audio`, { ...auth, range: 'bytes=0-0' })).headers['content-range']?.toString().split('/')[1]);
    const past = await raw('GET', `/api/v1/recordings/${ids.own}/audio`, { ...auth, range: `bytes=${size + 100}-` });
    expectClean(past, 416, 'API_BAD_RANGE');
    expect(past.headers['content-range']).toBe(`bytes */${size}`);

    expectClean(await raw('GET', '/api/v1/me', { authorization: 'Bearer tln.not-a-token' }), 401, 'API_INVALID_TOKEN');
    expectClean(await raw('GET', '/api/v1/me', { authorization: 'Bearer' }), 401, 'API_INVALID_TOKEN');
    expectClean(await raw('GET', '/api/v1/me', { authorization: `Bearer ${'x'.repeat(300)}` }), 401, 'API_INVALID_TOKEN');
    await cli('users', 'add', 'short-lived', '--role', 'quality');
    const revoked = (await cli('tokens', 'create', 'short-lived')).trim();
    expect((await raw('GET', '/api/v1/me', { authorization: `Bearer ${revoked}` })).status).toBe(200);
    await cli('tokens', 'revoke', revoked.split('.')[1]!);
    expectClean(await raw('GET', '/api/v1/me', { authorization: `Bearer ${revoked}` }), 401, 'API_INVALID_TOKEN');
    const expiring = (await cli('tokens', 'create', 'short-lived', '--expires', new Date(Date.now() + 6000).toISOString())).trim();
    expect((await raw('GET', '/api/v1/me', { authorization: `Bearer ${expiring}` })).status).toBe(200);
    let expired = await raw('GET', '/api/v1/me', { authorization: `Bearer ${expiring}` });
    while (expired.status === 200) {
      await sleep(200);
      expired = await raw('GET', '/api/v1/me', { authorization: `Bearer ${expiring}` });
    }
    expectClean(expired, 401, 'API_INVALID_TOKEN');
    await cli('users', 'disable', 'short-lived');

    // A cross-site POST riding on the session cookie, without the CSRF token.
    const login = await raw('POST', '/api/v1/session', { 'content-type': 'application/json' }, JSON.stringify({ token: tokens.supervisor }));
    expect(login.status).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const crossSite = { cookie, origin: 'https://evil.example', 'content-type': 'application/json' };
    expectClean(await raw('POST', `/api/v1/recordings/${ids.team}/hold`, crossSite, JSON.stringify({ reason: 'x' })), 403, 'API_CSRF');
    expectClean(await raw('DELETE', `/api/v1/recordings/${ids.team}/hold`, { cookie, origin: 'https://evil.example' }), 403, 'API_CSRF');
    expectClean(await raw('POST', '/api/v1/exports', crossSite, '{}'), 403, 'API_CSRF');

    await sleep(Math.max(0, 2000 - (Date.now() - startedAt)));
    const id = await live.hangUp();
    const entry = (await (await fetch(`${base}/api/v1/recordings/${id}`, { headers: headers('quality') })).json()) as { status: string; durationMs: number };
    expect(entry.status).toBe('complete');
    expect(entry.durationMs).toBeGreaterThanOrEqual(1900);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/tallenne_api_errors_total\{route="[^"]*",code="API_CSRF"\} [1-9]/);
    expect(d.output()).not.toContain(CUSTOMER);
  }, 60_000);
});
