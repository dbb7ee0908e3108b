/**
 * No secret leaves the daemon: a full run with SIP over TLS, HTTPS on the [tls] certificate,
 * an SRTP call keyed by SDES, the number-hash HMAC key, an OpenID client secret, API tokens,
 * a page session and an OIDC access token; then the errors: bad tokens, a forged JWT, bad
 * SDES lines, refused TLS handshakes. Every byte the daemon printed (stdout and stderr),
 * `/metrics`, and `check-config`'s output are searched for every secret the run used, in
 * every spelling a careless line would give it: as is, hex, base64, base64url, unpadded,
 * and a 16-character piece of each (a secret cut short is still a leak).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { BIN, makeConfig, randomRtpRange, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { tempDir } from '../support/cleanup.js';
import { TestPki } from '../support/pki.js';
import { freePort, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { offerSdp } from '../support/rs-metadata.js';
import { answerCrypto, cryptoLine, newKey, senderPolicy, toSrtpOffer } from '../support/srtp-offer.js';
import { sleep } from '../support/legs.js';

const execFileAsync = promisify(execFile);

/** Every spelling of a secret worth searching for, each at least 12 characters long. */
function spellings(secret: string | Buffer): string[] {
  const b = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  const forms = new Set<string>();
  if (typeof secret === 'string') forms.add(secret);
  forms.add(b.toString('hex'));
  forms.add(b.toString('hex').toUpperCase());
  forms.add(b.toString('base64'));
  forms.add(b.toString('base64').replace(/=+$/, ''));
  forms.add(b.toString('base64url'));
  for (const f of [...forms]) if (f.length > 16) forms.add(f.slice(0, 16));
  return [...forms].filter((f) => f.length >= 12);
}

interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function https(port: number, path: string, opts: { ca: Buffer; headers?: Record<string, string>; body?: string; method?: string }): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: opts.method ?? (opts.body ? 'POST' : 'GET'), ca: opts.ca, headers: opts.headers ?? {}, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A TLS connection that the daemon should refuse; resolves when it has ended either way. */
function refusedHandshake(port: number, opts: ConnectionOptions): Promise<void> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...opts });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('secureConnect', () => s.destroy());
  });
}

describe('secrets in a full run', () => {
  const dir = tempDir('secrets');
  const pki = new TestPki(join(dir, 'pki'));
  const CLIENT_SECRET = randomBytes(30).toString('base64url');
  const hmacKey = randomBytes(32);
  /** Every secret the run used, by what it is. */
  const secrets = new Map<string, string | Buffer>();
  /** What the run gathered: the daemon's output, /metrics, check-config. */
  const seen = { metrics: '', checkConfig: '', daemon: '' };
  let d: DaemonHandle;
  let idp: TestProvider;
  const statuses: Record<string, number> = {};

  const cli = async (...args: string[]) => (await execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile, '--actor', 'test-admin'], { encoding: 'utf8' })).stdout;

  beforeAll(async () => {
    pki.issue('server', 'recorder', 'IP:127.0.0.1');
    const httpPort = await freePort();
    const redirect = `https://127.0.0.1:${httpPort}/api/v1/auth/oidc/callback`;
    idp = await startOidcProvider({
      accounts: {}, clientId: 'tallenne', clientSecret: CLIENT_SECRET, redirectUri: redirect, audience: 'urn:tallenne:api',
      service: { roles: ['maintainer'] },
    });
    const secretFile = join(dir, 'oidc-client-secret');
    writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
    const hashKeyFile = join(dir, 'number-hash.key');
    writeFileSync(hashKeyFile, hmacKey, { mode: 0o600 });
    let text = makeConfig(dir, randomRtpRange(), `
[tls]
certificate_file = "${pki.path('server.crt')}"
key_file = "${pki.path('server.key')}"
[http.tls]
mode = "sip"
[auth.oidc]
issuer = "${idp.issuer}"
client_id = "tallenne"
client_secret_file = "${secretFile}"
redirect_url = "${redirect}"
audience = "urn:tallenne:api"
`);
    text = text
      .replace('listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]', 'listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0"]')
      .replace('listen = "127.0.0.1:0"', `listen = "127.0.0.1:${httpPort}"`)
      .replace(`hash_key_file = "${dir}/data/number-hash.key"`, `hash_key_file = "${hashKeyFile}"`);
    d = await startDaemon({ dir, configText: text });
    const ca = pki.file('ca.crt');
    const tlsPort = d.logs.find((l) => l.msg === 'SIP listening' && l.transport === 'tls')!.port as number;

    secrets.set('HMAC key', hmacKey);
    secrets.set('OIDC client secret', CLIENT_SECRET);
    const tlsKey = pki.file('server.key').toString('utf8');
    secrets.set('TLS private scalar', Buffer.from(createPrivateKey(tlsKey).export({ format: 'jwk' }).d!, 'base64url'));
    tlsKey.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l)).forEach((l, i) => secrets.set(`TLS key PEM line ${i}`, l));

    // An SRTP call over SIP/TLS, with one packet tampered with.
    const key = newKey('AES_CM_128_HMAC_SHA1_80');
    const line = cryptoLine(1, key);
    secrets.set('offered SDES key', key.keySalt);
    const sip = new SipTestClient('tls', tlsPort, '127.0.0.1', { ca });
    await sip.open();
    let sender: RtpSender | undefined;
    try {
      const res = await sip.invite({ body: toSrtpOffer(offerSdp(['1']), [[line]]), contentType: 'application/sdp' });
      statuses.srtpCall = res.status;
      const answered = answerCrypto(res.body.toString('utf8'))[0]![0]!;
      secrets.set('answered SDES key', Buffer.from(/inline:([A-Za-z0-9+/=]+)/.exec(answered)![1]!, 'base64'));
      sender = new RtpSender({ port: answerMedia(res.body.toString('utf8'))[0]!.port, toneHz: 440, srtp: senderPolicy(line) });
      await sender.open();
      sender.start();
      await sleep(800);
      const flipped = sender.nextWire();
      flipped[20]! ^= 0x01;
      sender.sendRaw(flipped);
      await sleep(300);
      sender.stop();
      statuses.bye = (await sip.bye()).status;
    } finally {
      sender?.close();
      sip.close();
    }
    // Bad SDES lines: a key too short for its suite, and a key with the wrong suite name.
    for (const [name, bad] of [
      ['short SDES key', `1 AES_CM_128_HMAC_SHA1_80 inline:${randomBytes(20).toString('base64')}`],
      ['SDES key of an unknown suite', `1 AES_CM_512_HMAC_SHA9 inline:${randomBytes(30).toString('base64')}`],
    ] as const) {
      secrets.set(name, Buffer.from(/inline:(\S+)/.exec(bad)![1]!, 'base64'));
      const c = new SipTestClient('udp', d.udpPort);
      await c.open();
      try {
        statuses[name] = (await c.invite({ body: toSrtpOffer(offerSdp(['1']), [[bad]]), contentType: 'application/sdp' })).status;
      } finally {
        c.close();
      }
    }

    // API: a token, a page session, an OIDC access token; and bad ones.
    await cli('users', 'add', 'secret-keeper', '--role', 'supervisor');
    const token = (await cli('tokens', 'create', 'secret-keeper')).trim();
    secrets.set('API token', token);
    secrets.set('API token secret part', token.split('.')[2]!);
    statuses.bearer = (await https(httpPort, '/api/v1/me', { ca, headers: { authorization: `Bearer ${token}` } })).status;
    const login = await https(httpPort, '/api/v1/session', { ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    statuses.login = login.status;
    const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('tallenne_session='))!;
    secrets.set('session cookie', cookie.split(';')[0]!.split('=')[1]!);
    secrets.set('CSRF token', (JSON.parse(login.body) as { csrfToken: string }).csrfToken);
    const wrongSecret = `tln.${token.split('.')[1]}.${randomBytes(32).toString('base64url')}`;
    secrets.set('wrong token secret', wrongSecret.split('.')[2]!);
    statuses.wrongToken = (await https(httpPort, '/api/v1/me', { ca, headers: { authorization: `Bearer ${wrongSecret}` } })).status;
    const garbage = `garbage-${randomBytes(24).toString('hex')}`;
    secrets.set('garbage bearer', garbage);
    statuses.garbage = (await https(httpPort, '/api/v1/me', { ca, headers: { authorization: `Bearer ${garbage}` } })).status;
    const badLogin = `tln.${randomBytes(8).toString('hex')}.${randomBytes(32).toString('base64url')}`;
    secrets.set('bad login token', badLogin.split('.')[2]!);
    statuses.badLogin = (await https(httpPort, '/api/v1/session', { ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: badLogin }) })).status;
    const jwt = await idp.serviceAccessToken();
    secrets.set('OIDC access token', jwt);
    secrets.set('OIDC access token signature', jwt.split('.')[2]!);
    statuses.jwt = (await https(httpPort, '/api/v1/me', { ca, headers: { authorization: `Bearer ${jwt}` } })).status;
    const forged = `${jwt.split('.').slice(0, 2).join('.')}.${randomBytes(256).toString('base64url')}`;
    secrets.set('forged JWT signature', forged.split('.')[2]!);
    statuses.forged = (await https(httpPort, '/api/v1/me', { ca, headers: { authorization: `Bearer ${forged}` } })).status;

    // Refused handshakes: an old protocol on both TLS listeners, a client that does not trust us.
    const old: ConnectionOptions = { ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
    await refusedHandshake(tlsPort, old);
    await refusedHandshake(httpPort, old);
    await refusedHandshake(httpPort, {});

    await d.waitForLog((l) => l.msg === 'recording stored', 30_000);
    seen.metrics = (await https(httpPort, '/metrics', { ca })).body;
    const check = await execFileAsync(process.execPath, [BIN, 'check-config', '--config', d.configFile], { encoding: 'utf8' });
    seen.checkConfig = check.stdout + check.stderr;
    // A reload re-reads every key file.
    const reloaded = d.waitForLog((l) => l.msg === 'config reloaded');
    d.proc.kill('SIGHUP');
    await reloaded;
    expect(await d.stop()).toBe(0);
    seen.daemon = d.output();
  }, 120_000);

  afterAll(async () => {
    await d?.kill();
    await idp?.close();
  });

  it('exercised what it meant to: the calls, the logins and the refusals', () => {
    expect(statuses).toMatchObject({ srtpCall: 200, bye: 200, bearer: 200, login: 200, wrongToken: 401, garbage: 401, badLogin: 401, jwt: 200, forged: 401 });
    expect([400, 488]).toContain(statuses['short SDES key']);
    expect([400, 488]).toContain(statuses['SDES key of an unknown suite']);
    expect(seen.metrics).toMatch(/^tallenne_rtp_packets_dropped_total\{reason="srtp_auth_failed"\} [1-9]/m);
    expect(seen.metrics).toMatch(/^tallenne_http_connections_refused_total\{reason="tls_handshake"\} [1-9]/m);
    expect(seen.metrics).toMatch(/^tallenne_sip_refused_total\{reason="tls_handshake"\} [1-9]/m);
    expect(seen.metrics).toMatch(/^tallenne_api_errors_total\{route="[^"]+",code="API_INVALID_TOKEN"\} [1-9]/m);
    expect(seen.checkConfig).toContain('"client_secret_file"');
    expect(d.logs.length).toBeGreaterThan(15);
    // The search finds a secret that is there (a control for the checks below).
    expect(spellings(hmacKey).filter((f) => `{"key":"${hmacKey.toString('base64')}"}`.includes(f)).length).toBeGreaterThan(0);
  });

  it.each(['daemon', 'metrics', 'checkConfig'] as const)('no secret, in any spelling, is in the %s output', (where) => {
    const text = seen[where];
    expect(text.length).toBeGreaterThan(0);
    const found: string[] = [];
    for (const [name, secret] of secrets) {
      for (const form of spellings(secret)) if (text.includes(form)) found.push(`${name} (as ${form.slice(0, 6)}…)`);
    }
    expect(found).toEqual([]);
  });
});

describe('key files open to group or others', () => {
  /** Runs `tallenne ARGS`; resolves with its exit code and everything it printed. */
  async function tallenne(...args: string[]): Promise<{ status: number; out: string }> {
    try {
      const r = await execFileAsync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
      return { status: 0, out: r.stdout + r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { status: x.code, out: x.stdout + x.stderr };
    }
  }

  it.each([
    { key: 'privacy.hash_key_file', mode: 0o640, octal: '640' },
    { key: 'auth.oidc.client_secret_file', mode: 0o604, octal: '604' },
  ] as const)('$key with mode $octal stops the start and fails check-config, naming the file, the mode and the fix', async ({ key, mode }) => {
    const dir = tempDir('loose-key');
    const file = join(dir, 'secret.key');
    const secret = randomBytes(32);
    writeFileSync(file, secret.toString('base64url'), { mode });
    const extra = key === 'auth.oidc.client_secret_file'
      ? `[auth.oidc]\nissuer = "http://127.0.0.1:9"\nclient_id = "tallenne"\nclient_secret_file = "${file}"\nredirect_url = "http://127.0.0.1:9/cb"\n`
      : '';
    let text = makeConfig(dir, randomRtpRange(), extra);
    if (key === 'privacy.hash_key_file') text = text.replace(`hash_key_file = "${dir}/data/number-hash.key"`, `hash_key_file = "${file}"`);
    const configFile = join(dir, 'tallenne.toml');
    writeFileSync(configFile, text);
    const expected = `${key}: ${file} is open to group or others (mode ${mode.toString(8)}); a key file must be private: chmod 600 ${file}`;
    const run = await tallenne('run', '--config', configFile);
    expect(run.status).toBe(2);
    expect(run.out).toContain(expected);
    expect(run.out).toContain('TALLENNE_KEY_FILE_INSECURE');
    expect(run.out).not.toContain('SIP listening');
    const check = await tallenne('check-config', '--config', configFile);
    expect(check.status).toBe(2);
    expect(check.out).toContain(expected);
    for (const form of spellings(secret.toString('base64url'))) expect(run.out + check.out).not.toContain(form);
  });
});
