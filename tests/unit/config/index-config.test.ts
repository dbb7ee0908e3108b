import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { configKeyFileProblems } from '../../../src/secrets/key-file.js';
import { indexUrl, readUrlFile, redactUrl, scrubPassword } from '../../../src/index/postgres/url.js';
import { tempDir } from '../../support/cleanup.js';

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'x.toml');
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  return [];
}

describe('[index] config', () => {
  it('defaults to LMDB with a pool of 10', () => {
    expect(parseConfigText('', 'x.toml').config.index).toEqual({ backend: 'lmdb', pool_size: 10 });
  });

  it('postgres needs exactly one of url and url_file; lmdb takes neither', () => {
    expect(problems('[index]\nbackend = "postgres"\n')).toEqual([expect.stringMatching(/^index\.url: .*one of url and url_file/)]);
    expect(problems('[index]\nbackend = "postgres"\nurl = "postgres://t@db/t"\nurl_file = "/x"\n')).toHaveLength(1);
    expect(problems('[index]\nurl = "postgres://t@db/t"\n')).toEqual([expect.stringMatching(/^index\.url: .*backend = "lmdb"/)]);
    expect(problems('[index]\nbackend = "postgres"\nurl = "postgres://t@db:5432/t"\npool_size = 4\n')).toEqual([]);
    expect(problems('[index]\nbackend = "sqlite"\n')).toHaveLength(1);
    expect(problems('[index]\nbackend = "postgres"\nurl = "postgres://t@db/t"\npool = 4\n')).toHaveLength(1);
  });

  it('refuses a password in url without repeating it', () => {
    const p = problems('[index]\nbackend = "postgres"\nurl = "postgres://t:s3cret-pw@db/t"\n');
    expect(p).toEqual([expect.stringMatching(/^index\.url: .*url_file/)]);
    expect(p.join('\n')).not.toContain('s3cret-pw');
    const bad = problems('[index]\nbackend = "postgres"\nurl = "http://t:s3cret-pw@db/t"\n');
    expect(bad).toHaveLength(1);
    expect(bad.join('\n')).not.toContain('s3cret-pw');
  });

  it('reads url_file only when it is private, and shows URLs without the password', () => {
    const dir = tempDir('index-url');
    const file = join(dir, 'index.url');
    writeFileSync(file, 'postgres://t:s3cret-pw@db:5432/t\n', { mode: 0o644 });
    const { config } = parseConfigText(`[index]\nbackend = "postgres"\nurl_file = "${file}"\n`, 'x.toml');
    const loose = configKeyFileProblems(config);
    expect(loose).toEqual([expect.stringMatching(/^index\.url_file: .* chmod 600/)]);
    expect(() => readUrlFile(file)).toThrow(/index\.url_file/);
    writeFileSync(file, 'postgres://t:s3cret-pw@db:5432/t\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    expect(indexUrl(config.index)).toBe('postgres://t:s3cret-pw@db:5432/t');
    expect(redactUrl(indexUrl(config.index))).toBe('postgres://t:***@db:5432/t');
    expect(scrubPassword('auth failed for s3cret-pw', indexUrl(config.index))).toBe('auth failed for ***');
    writeFileSync(file, 'not a url\n');
    expect(() => readUrlFile(file)).toThrow(/not a URL/);
  });
});
