/**
 * SIP over TLS and who may send SIP, against the real daemon on loopback. Certificates are
 * made here with openssl: a CA, a server certificate for 127.0.0.1, client certificates
 * from the CA (one with an allowed name, one without) and a self-signed one.
 *
 * - With mutual TLS required, a client with an allowed certificate is recorded; with none,
 *   a name not allowed, or a self-signed one, the connection is refused and counted.
 * - A TLS 1.1 client is refused.
 * - A connection that dribbles a header and never finishes it is closed (TLS and TCP).
 * - New certificate files and a SIGHUP: a new connection sees the new certificate.
 * - A request from outside allowed_sources creates no call, no port, no spool file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { once } from 'node:events';
import { TestPki } from '../support/pki.js';
import { startDaemon, type DaemonHandle } from '../support/daemon.js';
import { tempDir } from '../support/cleanup.js';
import { SipTestClient } from '../support/sip-client.js';
import { closeAll, sleep, startAll, tonesForAnswer } from '../support/legs.js';
import { storedEntry, dataDirOf } from '../support/index-reader.js';
import { parseSipMessage, type SipResponse } from '../../src/sip/message.js';

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n';

const pki = new TestPki(join(tempDir('sip-tls'), 'pki'));

function makePki(): void {
  pki.issue('server', 'recorder-2025', 'IP:127.0.0.1');
  pki.issue('server-next', 'recorder-2026', 'IP:127.0.0.1');
  pki.issue('sbc1', 'sbc1.test', 'DNS:sbc1.test');
  pki.issue('intruder', 'intruder.test', 'DNS:intruder.test');
  pki.issue('selfsigned', 'sbc1.test', 'DNS:sbc1.test', true);
  // The daemon reads these paths; a reload re-reads them.
  pki.install('server', 'live');
}

const file = (name: string) => pki.file(name);
const clientCert = (name: string): ConnectionOptions => pki.client(name);

function tlsPortOf(d: DaemonHandle): number {
  return d.logs.find((l) => l.msg === 'SIP listening' && l.transport === 'tls')!.port as number;
}

async function metric(d: DaemonHandle, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

const OPTIONS = (transport: string, port: number) => [
  `OPTIONS sip:rec@127.0.0.1:${port} SIP/2.0`,
  `Via: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bKopt${Math.random().toString(16).slice(2)}`,
  'From: <sip:probe@127.0.0.1>;tag=p1', 'To: <sip:rec@127.0.0.1>', 'Call-ID: tls-probe', 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
].join('\r\n');

/**
 * Opens a TLS connection, sends OPTIONS, and says what came back: a SIP response, or the
 * connection ending (refused) with no response.
 */
async function probe(port: number, opts: ConnectionOptions): Promise<{ response?: SipResponse; refused: boolean; peerCN?: string; error?: string }> {
  const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ...opts });
  let data = Buffer.alloc(0);
  let peerCN: string | undefined;
  let error: string | undefined;
  s.on('data', (c: Buffer) => { data = Buffer.concat([data, c]); });
  s.on('secureConnect', () => {
    peerCN = s.getPeerCertificate().subject?.CN as string | undefined;
    s.write(OPTIONS('TLS', port));
  });
  const outcome = await new Promise<'data' | 'closed'>((resolve) => {
    s.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code;
      resolve('closed');
    });
    s.on('close', () => resolve('closed'));
    s.on('data', () => {
      if (data.includes('\r\n\r\n')) resolve('data');
    });
  });
  s.destroy();
  if (outcome === 'data') return { response: parseSipMessage(data) as SipResponse, refused: false, ...(peerCN ? { peerCN } : {}) };
  return { refused: true, ...(peerCN ? { peerCN } : {}), ...(error ? { error } : {}) };
}

beforeAll(() => makePki());

describe('SIP over TLS with mutual TLS required', () => {
  let d: DaemonHandle;
  let port: number;
  beforeAll(async () => {
    d = await startDaemon({
      dir: tempDir('sip-tls-daemon'),
      set: { sip: 'listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0"]\ntcp_message_timeout = "1s"' },
      extraToml: `
[tls]
certificate_file = "${pki.path('live.crt')}"
key_file = "${pki.path('live.key')}"
ca_file = "${pki.path('ca.crt')}"
require_client_certificate = true
allowed_client_names = ["sbc1.test"]
`,
    });
    port = tlsPortOf(d);
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('records a call from a client whose certificate the CA signed for an allowed name', async () => {
    const client = new SipTestClient('tls', port, '127.0.0.1', { ...clientCert('sbc1'), servername: '' });
    await client.open();
    try {
      const res = await client.invite({ body: SDP, contentType: 'application/sdp', uri: `sips:rec@127.0.0.1:${port}` });
      expect(res.status).toBe(200);
      const contact = res.headers.find((h) => h.name === 'contact')!.value;
      expect(contact).toMatch(/^<sips:tallenne@127\.0\.0\.1:\d+;transport=tls>/);
      const legs = await tonesForAnswer(res.body.toString());
      startAll(legs);
      await sleep(1500);
      closeAll(legs);
      expect((await client.bye()).status).toBe(200);
    } finally {
      client.close();
    }
    const stored = await d.waitForLog((l) => l.msg === 'recording stored');
    const entry = await storedEntry(dataDirOf(d.dir), stored.recording as string);
    expect(entry.status).toBe('complete');
    const answered = d.logs.find((l) => l.msg === 'call answered')!;
    expect(answered.transport).toBe('TLS');
  });

  it('refuses a client without a certificate, with a name not allowed, or self-signed, and counts each', async () => {
    const none = await probe(port, { ca: file('ca.crt') });
    expect(none.refused).toBe(true);
    const intruder = await probe(port, clientCert('intruder'));
    expect(intruder.refused).toBe(true);
    const selfSigned = await probe(port, { ca: file('ca.crt'), cert: file('selfsigned.crt'), key: file('selfsigned.key') });
    expect(selfSigned.refused).toBe(true);
    // The allowed client on the same listener is answered.
    const ok = await probe(port, clientCert('sbc1'));
    expect(ok.response?.status).toBe(200);
    expect(await metric(d, 'tallenne_sip_refused_total', '{reason="client_name"}')).toBe(1);
    expect(await metric(d, 'tallenne_sip_refused_total', '{reason="tls_handshake"}')).toBeGreaterThanOrEqual(2);
  });

  it('refuses a TLS 1.1 client', async () => {
    // The handshake fails whichever side says no: the daemon (minVersion TLS 1.2), or a
    // local OpenSSL that no longer offers TLS 1.1 at all. Either way no SIP gets through.
    const old = await probe(port, { ...clientCert('sbc1'), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(old.refused).toBe(true);
    expect(old.response).toBeUndefined();
    // OpenSSL 3.0 here offers TLS 1.1 at security level 0, so it is the daemon's protocol_version alert.
    expect(['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_NO_PROTOCOLS_AVAILABLE']).toContain(old.error);
  });

  it.each(['TLS', 'TCP'] as const)('closes a %s connection that dribbles a header and never finishes it', async (transport) => {
    const before = await metric(d, 'tallenne_sip_connections_closed_total', '{reason="message_timeout"}');
    const s: Socket = transport === 'TLS'
      ? tlsConnect({ host: '127.0.0.1', port, ...clientCert('sbc1') })
      : createConnection({ host: '127.0.0.1', port: d.tcpPort });
    await once(s, transport === 'TLS' ? 'secureConnect' : 'connect');
    // The daemon may reset the connection rather than close it; either ends it.
    const ended = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => undefined);
    const text = OPTIONS(transport, transport === 'TLS' ? port : d.tcpPort);
    // One byte every 50 ms: never silent for the idle timeout, never a whole message.
    let i = 0;
    const dribble = setInterval(() => {
      if (!s.destroyed && i < text.length - 4) s.write(text[i++]!);
    }, 50);
    try {
      await ended;
    } finally {
      clearInterval(dribble);
      s.destroy();
    }
    expect(await metric(d, 'tallenne_sip_connections_closed_total', '{reason="message_timeout"}')).toBe(before + 1);
  });

  it('serves a new certificate to new connections after the files change and a SIGHUP', async () => {
    expect((await probe(port, clientCert('sbc1'))).peerCN).toBe('recorder-2025');
    pki.install('server-next', 'live');
    const reloaded = d.waitForLog((l) => l.msg === 'TLS certificate and key reloaded');
    d.proc.kill('SIGHUP');
    await reloaded;
    const after = await probe(port, clientCert('sbc1'));
    expect(after.peerCN).toBe('recorder-2026');
    expect(after.response?.status).toBe(200);
  });
});

describe('a key file readable by others', () => {
  it('stops the start with a typed error naming the file and its mode, and check-config says so', async () => {
    const own = tempDir('sip-tls-loose');
    const key = join(own, 'loose.key');
    copyFileSync(pki.path('server.key'), key);
    chmodSync(key, 0o644);
    const tlsToml = `\n[tls]\ncertificate_file = "${pki.path('server.crt')}"\nkey_file = "${key}"\n`;
    const configText = `[sip]\nlisten = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0"]\n[storage]\ndir = "${own}/data"\nmin_free = "1MiB"\n[http]\nlisten = "127.0.0.1:0"\n[privacy]\nhash_key_file = "${own}/data/number-hash.key"\n${tlsToml}`;
    await expect(startDaemon({ dir: own, configText })).rejects.toThrow(/^(?=[\s\S]*TALLENNE_KEY_FILE_INSECURE)(?=[\s\S]*open to group or others \(mode 644\))/);
    const configFile = join(own, 'tallenne.toml');
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [join(process.cwd(), 'bin', 'tallenne'), 'check-config', '--config', configFile], { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toContain(`tls.key_file: ${key} is open to group or others (mode 644); a key file must be private: chmod 600 ${key}`);
    expect(stderr).not.toContain('PRIVATE KEY');
  });
});

describe('allowed_sources', () => {
  let d: DaemonHandle;
  beforeAll(async () => {
    d = await startDaemon({ dir: tempDir('sip-sources'), set: { sip: 'allowed_sources = ["127.0.0.1/32"]' } });
  });
  afterAll(async () => {
    await d?.kill();
  });

  it('answers an INVITE from 127.0.0.2 403 and creates no call, no port and no spool file', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
    try {
      const invite = [
        `INVITE sip:rec@127.0.0.1:${d.udpPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.2:${s.address().port};branch=z9hG4bKoutside`,
        'From: <sip:outsider@127.0.0.2>;tag=o1', `To: <sip:rec@127.0.0.1:${d.udpPort}>`, 'Call-ID: outside-1', 'CSeq: 1 INVITE',
        `Contact: <sip:outsider@127.0.0.2:${s.address().port}>`, 'Content-Type: application/sdp', `Content-Length: ${SDP.length}`, '', SDP,
      ].join('\r\n');
      const reply = once(s, 'message');
      s.send(invite, d.udpPort, '127.0.0.1');
      const res = parseSipMessage((await reply)[0] as Buffer) as SipResponse;
      expect(res.status).toBe(403);
    } finally {
      s.close();
    }
    expect(await metric(d, 'tallenne_sip_refused_total', '{reason="source"}')).toBe(1);
    expect(await metric(d, 'tallenne_rtp_ports_in_use', '')).toBe(0);
    expect(await metric(d, 'tallenne_active_calls', '')).toBe(0);
    expect(d.logs.filter((l) => l.msg === 'call answered' || l.msg === 'INVITE rejected')).toEqual([]);
    expect(readdirSync(join(d.dir, 'data', 'spool'))).toEqual([]);
    // The listed source is still served.
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    try {
      expect((await client.invite({ body: SDP, contentType: 'application/sdp' })).status).toBe(200);
      expect((await client.bye()).status).toBe(200);
    } finally {
      client.close();
    }
  });
});
