/**
 * The TLS checks: the schema's rules for [tls] and [http.tls], the key file's permissions,
 * and client certificate names (subject CN and SAN DNS).
 */
import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { certificateNames, clientNameAllowed, httpTlsSource, loadTlsMaterial, tlsFileProblems } from '../../../src/tls/material.js';
import { KeyFileError } from '../../../src/secrets/key-file.js';
import { tempDir } from '../../support/cleanup.js';

const parse = (text: string) => parseConfigText(text, '/etc/tallenne/tallenne.toml');
const problems = (text: string): readonly string[] => {
  try {
    parse(text);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
};

describe('[tls] in the schema', () => {
  it('reads tls: listeners, IPv4 and IPv6', () => {
    const c = parse('[sip]\nlisten = ["tls:127.0.0.1:5061", "tls:[::1]:5061"]\n[tls]\ncertificate_file = "c.pem"\nkey_file = "k.pem"\n').config;
    expect(c.sip.listen).toEqual([{ transport: 'tls', address: '127.0.0.1', port: 5061 }, { transport: 'tls', address: '::1', port: 5061 }]);
    expect(c.tls.certificate_file).toBe('/etc/tallenne/c.pem');
    expect(c.tls.key_file).toBe('/etc/tallenne/k.pem');
    expect(c.tls.require_client_certificate).toBe(false);
  });

  it('needs the certificate and key for a tls: listener', () => {
    expect(problems('[sip]\nlisten = ["tls:127.0.0.1:5061"]\n')).toEqual([
      'tls.certificate_file: a tls: listener in sip.listen needs tls.certificate_file',
      'tls.key_file: a tls: listener in sip.listen needs tls.key_file',
    ]);
  });

  it('needs a CA for mutual TLS, and mutual TLS for a list of client names', () => {
    expect(problems('[tls]\nrequire_client_certificate = true\n')).toEqual([
      'tls.ca_file: require_client_certificate needs ca_file, the CA client certificates are checked against',
    ]);
    expect(problems('[tls]\nallowed_client_names = ["sbc1.example.net"]\n')).toEqual([
      'tls.allowed_client_names: allowed_client_names needs require_client_certificate = true',
    ]);
  });

  it('checks allowed_sources, the INVITE rate and the stream limits', () => {
    expect(problems('[sip]\nallowed_sources = ["10.0.0.0/8", "10.0.0.0/40", "host"]\ninvite_rate = "fast"\nunlisted_sources = "ignore"\n')).toEqual([
      'sip.allowed_sources[1]: "10.0.0.0/40": the prefix length must be 0 to 32',
      'sip.allowed_sources[2]: "host" is not an address or CIDR range (e.g. "10.0.0.0/8", "2001:db8::/32")',
      'sip.unlisted_sources: Invalid option: expected one of "reject"|"drop"',
      'sip.invite_rate: "fast" is not a rate (e.g. "20/s", "600/min")',
    ]);
    const c = parse('[sip]\ninvite_rate = "600/min"\ntcp_idle_timeout = "2m"\n').config;
    expect(c.sip.invite_rate.perSecond).toBe(10);
    expect(c.sip.tcp_idle_timeout.ms).toBe(120_000);
    expect(c.sip.allowed_sources).toEqual([]);
    expect(c.sip.unlisted_sources).toBe('reject');
  });
});

describe('[http.tls] in the schema', () => {
  const base = '[tls]\ncertificate_file = "sip.crt"\nkey_file = "sip.key"\nca_file = "ca.crt"\n';

  it('is off by default: plain HTTP', () => {
    const c = parse('').config;
    expect(c.http.tls.mode).toBe('off');
    expect(httpTlsSource(c)).toBeUndefined();
  });

  it('takes the [tls] files with mode = "sip", its own with mode = "own"', () => {
    const sip = parse(`[http.tls]\nmode = "sip"\n${base}`).config;
    expect(httpTlsSource(sip)).toEqual({ key: 'tls', files: sip.tls });
    const own = parse('[http.tls]\nmode = "own"\ncertificate_file = "web.crt"\nkey_file = "web.key"\n').config;
    expect(httpTlsSource(own)).toEqual({ key: 'http.tls', files: own.http.tls });
    expect(own.http.tls.key_file).toBe('/etc/tallenne/web.key');
    expect(own.http.tls.hsts_max_age.text).toBe('365 days');
  });

  it('lists every inconsistency with its key path', () => {
    expect(problems('[http.tls]\nmode = "own"\n')).toEqual([
      'http.tls.certificate_file: mode = "own" needs http.tls.certificate_file',
      'http.tls.key_file: mode = "own" needs http.tls.key_file',
    ]);
    expect(problems('[http.tls]\nmode = "sip"\n')).toEqual([
      'http.tls.mode: mode = "sip" needs tls.certificate_file',
      'http.tls.mode: mode = "sip" needs tls.key_file',
    ]);
    expect(problems(`[http.tls]\nmode = "sip"\nkey_file = "web.key"\n${base}`)).toEqual([
      'http.tls.key_file: set, but mode = "sip" takes the files of [tls]: remove it, or set mode = "own"',
    ]);
    expect(problems('[http.tls]\ncertificate_file = "web.crt"\n')).toEqual([
      'http.tls.certificate_file: set, but mode = "off" serves plain HTTP: remove it, or set mode = "own"',
    ]);
    expect(problems('[http.tls]\nrequire_client_certificate = true\n')).toEqual([
      'http.tls.mode: client certificates need TLS: set mode = "sip" or "own"',
    ]);
    expect(problems('[http.tls]\nmode = "own"\ncertificate_file = "w.crt"\nkey_file = "w.key"\nrequire_client_certificate = true\n')).toEqual([
      'http.tls.require_client_certificate: needs a CA to check client certificates against: http.tls.ca_file',
    ]);
    expect(problems(`[http.tls]\nmode = "sip"\nallowed_client_names = ["ops"]\n${base}`)).toEqual([
      'http.tls.allowed_client_names: allowed_client_names needs require_client_certificate = true',
    ]);
    expect(problems('[http.tls]\nmode = "https"\n')[0]).toMatch(/^http\.tls\.mode: /);
  });
});

describe('the TLS files', () => {
  const dir = tempDir('tls-unit');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, 'CERTIFICATE');
  writeFileSync(key, 'SECRET-KEY-BYTES', { mode: 0o600 });
  const tls = { key: 'tls', files: { certificate_file: cert, key_file: key } };

  it('reads a key file only its owner can read', () => {
    chmodSync(key, 0o600);
    expect(tlsFileProblems(tls)).toEqual([]);
    expect(loadTlsMaterial(tls).key.toString()).toBe('SECRET-KEY-BYTES');
  });

  it.each([0o640, 0o604, 0o644])('refuses a key file with mode %o, naming the file and never its contents', (mode) => {
    chmodSync(key, mode);
    let err: unknown;
    try {
      loadTlsMaterial({ key: 'http.tls', files: tls.files });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyFileError);
    expect((err as KeyFileError).code).toBe('TALLENNE_KEY_FILE_INSECURE');
    expect((err as KeyFileError).problems).toEqual([`http.tls.key_file: ${key} is open to group or others (mode ${mode.toString(8)}); a key file must be private: chmod 600 ${key}`]);
    expect((err as Error).message).not.toContain('SECRET');
    chmodSync(key, 0o600);
  });

  it('names a missing file', () => {
    expect(tlsFileProblems({ key: 'tls', files: { ...tls.files, ca_file: join(dir, 'absent.pem') } })).toEqual([`tls.ca_file: ${join(dir, 'absent.pem')}: ENOENT`]);
    expect(() => loadTlsMaterial({ key: 'http.tls', files: { certificate_file: cert } })).toThrow(ConfigError);
    expect(() => loadTlsMaterial({ key: 'http.tls', files: { certificate_file: cert } })).toThrow(/http\.tls\.key_file: not set/);
  });
});

describe('client certificate names', () => {
  const cert = { subject: { CN: 'sbc1.example.net' } as never, subjectaltname: 'DNS:sbc1.example.net, DNS:sbc-a.example.net, IP Address:192.0.2.1' };

  it('are the subject CN and the SAN DNS names', () => {
    expect(certificateNames(cert)).toEqual(['sbc1.example.net', 'sbc1.example.net', 'sbc-a.example.net']);
  });

  it.each([
    [[], true],
    [['sbc1.example.net'], true],
    [['SBC-A.example.net'], true],
    [['sbc2.example.net'], false],
    [['192.0.2.1'], false],
  ])('allowed %j → %s', (allowed, ok) => {
    expect(clientNameAllowed(cert, allowed as string[])).toBe(ok);
  });

  it('a certificate without names matches no list', () => {
    expect(clientNameAllowed({ subject: {} as never, subjectaltname: '' }, ['sbc1.example.net'])).toBe(false);
  });
});
