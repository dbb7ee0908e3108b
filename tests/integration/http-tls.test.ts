/**
 * HTTPS on the [http] listener, against the real daemon on loopback, with a CA made here.
 *
 * - `[http.tls] mode = "own"`: health, metrics and a token login over HTTPS; HSTS and a
 *   `Secure` session cookie; a TLS 1.1 client refused and counted; a new certificate
 *   served after the files change and a SIGHUP.
 * - `mode = "sip"` with mutual TLS: the [tls] certificate, and only clients with a
 *   certificate from the CA naming an allowed peer get an answer.
 * - `mode = "own"` with mutual TLS under a CA of its own: a SIGHUP after the config's
 *   allowed names and HSTS age change refuses a name taken off the list, lets a new one
 *   in, and sends the new Strict-Transport-Security.
 * - By default the listener is plain HTTP: no HSTS, no `Secure` cookie.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { BIN, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { tempDir } from '../support/cleanup.js';
import { TestPki } from '../support/pki.js';

const execFileAsync = promisify(execFile);
const pki = new TestPki(tempDir('http-tls'));

beforeAll(() => {
  pki.issue('web', 'recorder-web-2025', 'IP:127.0.0.1');
  pki.issue('web-next', 'recorder-web-2026', 'IP:127.0.0.1');
  pki.issue('ops', 'ops.test', 'DNS:ops.test');
  pki.issue('intruder', 'intruder.test', 'DNS:intruder.test');
  pki.install('web', 'live');
});

interface Answer {
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  peerCN?: string;
  protocol?: string | null;
  /** The connection failed or was closed before an answer: the error's code and message. */
  error?: string;
  detail?: string;
}

/** One HTTPS request; a refused handshake or a closed connection resolves with `error`. */
function https(port: number, path: string, opts: RequestOptions & { body?: string } = {}): Promise<Answer> {
  return new Promise((resolve) => {
    const { body, ...rest } = opts;
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent: false, ...rest }, (res) => {
      const sock = res.socket as TLSSocket;
      const peerCN = sock.getPeerCertificate().subject?.CN as string | undefined;
      const protocol = sock.getProtocol();
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, protocol, ...(peerCN ? { peerCN } : {}) }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ headers: {}, body: '', error: e.code ?? e.message, detail: e.message }));
    req.end(body);
  });
}

async function metric(port: number, name: string, labels: string, opts: RequestOptions): Promise<number> {
  const text = (await https(port, '/metrics', opts)).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

async function cli(d: DaemonHandle, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile, '--actor', 'test-admin'], { encoding: 'utf8' });
  return stdout;
}

describe('HTTPS with its own certificate ([http.tls] mode = "own")', () => {
  let d: DaemonHandle;
  const trust = () => pki.client();
  beforeAll(async () => {
    d = await startDaemon({
      dir: tempDir('http-tls-own'),
      extraToml: `
[http.tls]
mode = "own"
certificate_file = "${pki.path('live.crt')}"
key_file = "${pki.path('live.key')}"
hsts_max_age = "180 days"
`,
    });
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('serves health and metrics over TLS 1.2 or later, with HSTS', async () => {
    const health = await https(d.httpPort, '/healthz', trust());
    expect(health.status).toBe(200);
    expect(health.peerCN).toBe('recorder-web-2025');
    expect(['TLSv1.2', 'TLSv1.3']).toContain(health.protocol);
    expect(health.headers['strict-transport-security']).toBe(`max-age=${180 * 86400}`);
    const metrics = await https(d.httpPort, '/metrics', trust());
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^tallenne_http_connections_refused_total\{reason="tls_handshake"\} 0$/m);
    expect(d.logs.find((l) => l.msg === 'HTTP listening')!.tls).toBe('own');
  });

  it('refuses a client that does not trust the CA, and counts the failed handshake', async () => {
    const before = await metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="tls_handshake"}', trust());
    const untrusting = await https(d.httpPort, '/healthz', {});
    expect(untrusting.error).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    await expect.poll(() => metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="tls_handshake"}', trust())).toBe(before + 1);
  });

  it('sets the session cookie Secure over HTTPS', async () => {
    await cli(d, 'users', 'add', 'tls-supervisor', '--role', 'supervisor');
    const token = (await cli(d, 'tokens', 'create', 'tls-supervisor')).trim();
    const login = await https(d.httpPort, '/api/v1/session', { ...trust(), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(login.status).toBe(200);
    const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('tallenne_session='));
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(login.headers['strict-transport-security']).toBeDefined();
  });

  it('refuses a TLS 1.1 client and counts it', async () => {
    const before = await metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="tls_handshake"}', trust());
    const old = await https(d.httpPort, '/healthz', { ...trust(), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(old.status).toBeUndefined();
    // OpenSSL 3.0 here still offers TLS 1.1 at security level 0: the daemon's alert refuses it.
    expect(old.detail).toMatch(/alert protocol version|no protocols available/);
    if (/alert protocol version/.test(old.detail!)) {
      await expect.poll(() => metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="tls_handshake"}', trust())).toBe(before + 1);
    }
  });

  it('serves a new certificate to new connections after the files change and a SIGHUP', async () => {
    pki.install('web-next', 'live');
    const reloaded = d.waitForLog((l) => l.msg === 'TLS certificate and key reloaded' && l.listener === 'http');
    d.proc.kill('SIGHUP');
    await reloaded;
    const after = await https(d.httpPort, '/healthz', trust());
    expect(after.status).toBe(200);
    expect(after.peerCN).toBe('recorder-web-2026');
  });
});

describe('HTTPS with the [tls] certificate and mutual TLS ([http.tls] mode = "sip")', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({
      dir: tempDir('http-tls-sip'),
      extraToml: `
[tls]
certificate_file = "${pki.path('web.crt')}"
key_file = "${pki.path('web.key')}"
ca_file = "${pki.path('ca.crt')}"
[http.tls]
mode = "sip"
require_client_certificate = true
allowed_client_names = ["ops.test"]
`,
    });
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('answers a client whose certificate the CA signed for an allowed name, and refuses the rest', async () => {
    const ops = await https(d.httpPort, '/healthz', pki.client('ops'));
    expect(ops.status).toBe(200);
    expect(ops.peerCN).toBe('recorder-web-2025');
    const none = await https(d.httpPort, '/healthz', pki.client());
    expect(none.status).toBeUndefined();
    const intruder = await https(d.httpPort, '/healthz', pki.client('intruder'));
    expect(intruder.status).toBeUndefined();
    await expect.poll(() => metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="client_name"}', pki.client('ops'))).toBe(1);
    expect(await metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="tls_handshake"}', pki.client('ops'))).toBeGreaterThanOrEqual(1);
  });
});

describe('mutual TLS with its own CA ([http.tls] mode = "own"): allowed names and HSTS reload on SIGHUP', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({
      dir: tempDir('http-tls-reload'),
      extraToml: `
[http.tls]
mode = "own"
certificate_file = "${pki.path('web.crt')}"
key_file = "${pki.path('web.key')}"
ca_file = "${pki.path('ca.crt')}"
require_client_certificate = true
allowed_client_names = ["ops.test"]
hsts_max_age = "180 days"
`,
    });
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('refuses a client whose name was taken off the list, lets in a newly listed one, and sends the new HSTS age', async () => {
    const before = await https(d.httpPort, '/healthz', pki.client('ops'));
    expect(before.status).toBe(200);
    expect(before.headers['strict-transport-security']).toBe(`max-age=${180 * 86400}`);
    expect((await https(d.httpPort, '/healthz', pki.client('intruder'))).status).toBeUndefined();
    await expect.poll(() => metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="client_name"}', pki.client('ops'))).toBe(1);

    const text = readFileSync(d.configFile, 'utf8');
    writeFileSync(d.configFile, text.replace('allowed_client_names = ["ops.test"]', 'allowed_client_names = ["intruder.test"]').replace('hsts_max_age = "180 days"', 'hsts_max_age = "30 days"'));
    const reloaded = d.waitForLog((l) => l.msg === 'config reloaded');
    d.proc.kill('SIGHUP');
    expect(((await reloaded).changed as string[]).sort()).toEqual(['http.tls.allowed_client_names', 'http.tls.hsts_max_age']);

    const ops = await https(d.httpPort, '/healthz', pki.client('ops'));
    expect(ops.status).toBeUndefined();
    const intruder = await https(d.httpPort, '/healthz', pki.client('intruder'));
    expect(intruder.status).toBe(200);
    expect(intruder.headers['strict-transport-security']).toBe(`max-age=${30 * 86400}`);
    await expect.poll(() => metric(d.httpPort, 'tallenne_http_connections_refused_total', '{reason="client_name"}', pki.client('intruder'))).toBe(2);
  });
});

describe('plain HTTP by default', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({ dir: tempDir('http-plain') });
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('sends no HSTS and a session cookie without Secure', async () => {
    const health = await fetch(`http://127.0.0.1:${d.httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(health.headers.get('strict-transport-security')).toBeNull();
    await cli(d, 'users', 'add', 'plain-supervisor', '--role', 'supervisor');
    const token = (await cli(d, 'tokens', 'create', 'plain-supervisor')).trim();
    const login = await fetch(`http://127.0.0.1:${d.httpPort}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.getSetCookie().find((c) => c.startsWith('tallenne_session='))!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).not.toMatch(/; Secure/);
    expect(d.logs.find((l) => l.msg === 'HTTP listening')!.tls).toBe('off');
  });
});
