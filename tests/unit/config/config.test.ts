import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { parseConfigText, loadConfigFile, DEFAULT_CONFIG_FILE } from '../../../src/config/load.js';
import { parseDuration, addDuration } from '../../../src/config/duration.js';
import { ConfigError, ERROR_CODES } from '../../../src/errors.js';
import { defaultNodeId } from '../../../src/config/schema.js';

describe('durations', () => {
  it('parses units, calendar months and combinations', () => {
    expect(parseDuration('90s')).toMatchObject({ ms: 90_000, months: 0 });
    expect(parseDuration('15m')).toMatchObject({ ms: 900_000 });
    expect(parseDuration('1h 30m')).toMatchObject({ ms: 5_400_000 });
    expect(parseDuration('6 months')).toMatchObject({ months: 6, ms: 0 });
    expect(parseDuration('3 years 3 months')).toMatchObject({ months: 39 });
    expect(parseDuration('250ms')).toMatchObject({ ms: 250 });
    expect(parseDuration('ten minutes')).toMatch(/not a duration/);
    expect(parseDuration('5 fortnights')).toMatch(/unknown unit/);
  });

  it('adds months on the calendar, clamping to the month end', () => {
    const d = parseDuration('1 month');
    if (typeof d === 'string') throw new Error(d);
    expect(new Date(addDuration(Date.UTC(2026, 0, 31, 12), d)).toISOString()).toBe('2026-02-28T12:00:00.000Z');
    const y = parseDuration('12 months');
    if (typeof y === 'string') throw new Error(y);
    expect(new Date(addDuration(Date.UTC(2026, 10, 22), y)).toISOString()).toBe('2027-11-22T00:00:00.000Z');
  });
});

describe('config', () => {
  it('loads the embedded default with the contract keys', () => {
    const { config } = loadConfigFile(DEFAULT_CONFIG_FILE);
    expect(config.sip.listen).toEqual([
      { transport: 'udp', address: '127.0.0.1', port: 5060 },
      { transport: 'tcp', address: '127.0.0.1', port: 5060 },
    ]);
    expect(config.rtp).toMatchObject({ address: '127.0.0.1', port_min: 20000, port_max: 29999 });
    expect(config.rtp.inactivity_timeout.ms).toBe(60_000);
    expect(config.storage.dir.endsWith('/config/var')).toBe(true);
    expect(config.http.listen).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(Object.isFrozen(config.sip)).toBe(true);
  });

  it('resolves relative paths against the config file folder', () => {
    const { config } = parseConfigText('[storage]\ndir = "data"\n', '/etc/tallenne/tallenne.toml');
    expect(config.storage.dir).toBe('/etc/tallenne/data');
    expect(config.privacy.hash_key_file).toBe('/etc/tallenne/var/number-hash.key');
  });

  it('lists every error at once with its key path', () => {
    const text = [
      '[sip]', 'listen = ["udp:127.0.0.1", "sctp:1.2.3.4:5060"]', 'bogus = 1',
      '[rtp]', 'port_min = 30000', 'port_max = 20000', 'inactivity_timeout = "soon"',
      '[calls]', 'max_concurrent = -1',
      '[[agents]]', 'id = "a"',
    ].join('\n');
    try {
      parseConfigText(text, 'x.toml');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const p = (e as ConfigError).problems.join('\n');
      expect(p).toMatch(/sip\.listen\[0\]: .*TRANSPORT:ADDRESS:PORT/);
      expect(p).toMatch(/sip\.listen\[1\]/);
      expect(p).toMatch(/sip: unknown key\(s\) "bogus"/);
      expect(p).toMatch(/rtp\.inactivity_timeout: "soon" is not a duration/);
      expect(p).toMatch(/calls\.max_concurrent/);
      expect(p).toMatch(/agents\[0\]\.name/);
    }
  });

  it('names the recorder by its host name unless [cluster] node_id says otherwise, and checks the name', () => {
    expect(parseConfigText('', 'x.toml').config.cluster.node_id).toBe(defaultNodeId());
    expect(defaultNodeId()).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
    expect(parseConfigText('[cluster]\nnode_id = "rec-1.dc2"\n', 'x.toml').config.cluster.node_id).toBe('rec-1.dc2');
    for (const bad of ['', '-rec', 'rec 1', 'r'.repeat(64), 'rec/1']) {
      expect(() => parseConfigText(`[cluster]\nnode_id = "${bad}"\n`, 'x.toml'), bad).toThrow(/cluster\.node_id/);
    }
  });

  it('keeps audio on the file system by default and takes an S3 bucket with backend "s3"', () => {
    expect(parseConfigText('', 'x.toml').config.storage.backend).toBe('fs');
    const { config } = parseConfigText('[storage]\nbackend = "s3"\nbucket = "rec-audio"\nprefix = "site-a/"\nendpoint = "http://127.0.0.1:9000"\nforce_path_style = true\ncredentials_file = "s3.credentials"\n', '/etc/tallenne/tallenne.toml');
    expect(config.storage).toMatchObject({ backend: 's3', bucket: 'rec-audio', prefix: 'site-a/', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', force_path_style: true, credentials_file: '/etc/tallenne/s3.credentials' });
    expect(() => parseConfigText('[storage]\nbackend = "s3"\n', 'x.toml')).toThrow(/storage\.bucket/);
    expect(() => parseConfigText('[storage]\nbackend = "s3"\nbucket = "Bad_Bucket"\n', 'x.toml')).toThrow(/storage\.bucket/);
    expect(() => parseConfigText('[storage]\nbackend = "s3"\nbucket = "b12"\nprefix = "../x/"\n', 'x.toml')).toThrow(/storage\.prefix/);
    expect(() => parseConfigText('[storage]\nbackend = "s3"\nbucket = "b12"\nendpoint = "ftp://x"\n', 'x.toml')).toThrow(/storage\.endpoint/);
    expect(() => parseConfigText('[storage]\nbackend = "nfs"\n', 'x.toml')).toThrow(/storage\.backend/);
  });

  it('requires an advertised address when RTP binds a wildcard', () => {
    expect(() => parseConfigText('[rtp]\naddress = "0.0.0.0"\n', 'x.toml')).toThrow(/rtp\.advertise_address/);
    const { config } = parseConfigText('[rtp]\naddress = "0.0.0.0"\nadvertise_address = "198.51.100.7"\n', 'x.toml');
    expect(config.rtp.advertise_address).toBe('198.51.100.7');
  });

  it('reports TOML syntax errors with line and column', () => {
    expect(() => parseConfigText('[sip\nlisten = 1', 'x.toml')).toThrow(/line 1/);
  });

  it('ships profiles that load', () => {
    const dir = new URL('../../../config/profiles/', import.meta.url);
    let n = 0;
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.toml')) continue;
      expect(() => parseConfigText(readFileSync(new URL(f, dir), 'utf8'), f), f).not.toThrow();
      n++;
    }
    expect(n).toBeGreaterThanOrEqual(3);
  });

  it('documents every error code in the README', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) expect(readme, code).toContain(`\`${code}\``);
  });
});
