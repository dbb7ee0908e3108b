/**
 * The encoder over spools damaged into valid JSON of the wrong shape: inputs the fuzzer
 * found (tests/fixtures/fuzz/), which crashed the encoder's first pass with a TypeError
 * before a META was checked for its shape (spool-scan.ts usableMeta).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSpool, type EncodeResult } from '../../../src/encoder/encode-spool.js';
import { TallenneError } from '../../../src/errors.js';
import { tempDir } from '../../support/cleanup.js';
import { stagingIn } from '../../support/store.js';

const encode = (path: string): Promise<EncodeResult> =>
  encodeSpool({ spoolPath: path, staging: stagingIn(tempDir('spool-scan-store')), id: 'fuzz', complexity: 0, bitrate: 24000, skipSilence: true, maskDtmf: false });

function fuzzSpool(name: string): string {
  const f = JSON.parse(readFileSync(new URL(`../../fixtures/fuzz/${name}`, import.meta.url), 'utf8')) as { input: { data: string } };
  const path = join(tempDir('spool-scan'), `${name}.spool`);
  writeFileSync(path, Buffer.from(f.input.data, 'base64'));
  return path;
}

describe('encoding spools with META records of the wrong shape', () => {
  it('refuses a spool whose only META has a format of null (fuzz spool-1-1403) as corrupt', async () => {
    const err = await encode(fuzzSpool('spool-1-1403.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TallenneError);
    expect((err as TallenneError).code).toBe('TALLENNE_SPOOL_CORRUPT');
  });

  it('keeps the last good META when a later one has a leg of null (fuzz spool-1-5876)', async () => {
    const r = await encode(fuzzSpool('spool-1-5876.json'));
    expect(r.meta.legs.map((l) => l.index)).toEqual([0, 1]);
    expect(r.meta.legs.flatMap((l) => (l.formats ?? []).map((f) => f.codec)).sort()).toEqual(['PCMU', 'PCMU', 'TELEPHONE-EVENT', 'TELEPHONE-EVENT']);
  });

  it('skips a META whose formats are an object, not a list (fuzz spool-1-7694)', async () => {
    const r = await encode(fuzzSpool('spool-1-7694.json'));
    expect(r.meta.callId).toBe('fuzz@127.0.0.1');
    expect(r.meta.legs).toHaveLength(2);
  });
});
