import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadS3Credentials, parseS3Credentials } from '../../../src/storage/s3-credentials.js';
import { tempDir } from '../../support/cleanup.js';

describe('S3 credentials', () => {
  it('reads the key and secret of the shared-credentials form, with comments and a [default] header', () => {
    expect(parseS3Credentials('# site A\n[default]\naws_access_key_id = AKIA1\r\naws_secret_access_key=s3cr3t/+x\n', 'f')).toEqual({ accessKeyId: 'AKIA1', secretAccessKey: 's3cr3t/+x' });
    expect(parseS3Credentials('aws_access_key_id=a\naws_secret_access_key=b\naws_session_token=t\n', 'f')).toEqual({ accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 't' });
  });

  it('refuses what it cannot read whole, without repeating a value', () => {
    for (const [text, why] of [
      ['aws_access_key_id = a\n', /both/],
      ['aws_secret_access_key = hunter2\nregion = x\n', /line 2/],
      ['[other]\naws_access_key_id = a\naws_secret_access_key = hunter2\n', /\[default\]/],
      ['aws_access_key_id =\naws_secret_access_key = hunter2\n', /line 1: aws_access_key_id is empty/],
    ] as const) {
      const err = (() => {
        try {
          parseS3Credentials(text, '/etc/s3.credentials');
          return null;
        } catch (e) {
          return e as Error & { code?: string };
        }
      })();
      expect(err?.code, text).toBe('TALLENNE_S3_CREDENTIALS');
      expect(err?.message).toMatch(why);
      expect(err?.message).not.toContain('hunter2');
    }
  });

  it('takes the file before the environment, refuses a file others can read, and needs one of the two', () => {
    const dir = tempDir('s3cred');
    const file = join(dir, 's3.credentials');
    writeFileSync(file, 'aws_access_key_id = fromfile\naws_secret_access_key = x\n', { mode: 0o600 });
    const env = { accessKeyId: 'fromenv', secretAccessKey: 'y' };
    expect(loadS3Credentials(file, env).accessKeyId).toBe('fromfile');
    expect(loadS3Credentials(undefined, env).accessKeyId).toBe('fromenv');
    expect(() => loadS3Credentials(undefined, null)).toThrow(/AWS_ACCESS_KEY_ID/);
    chmodSync(file, 0o644);
    expect(() => loadS3Credentials(file, env)).toThrow(/chmod 600/);
    expect(() => loadS3Credentials(join(dir, 'absent'), env)).toThrow(/ENOENT/);
  });
});
