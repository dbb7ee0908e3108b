/**
 * The encoder's first pass over spools damaged into valid JSON of the wrong shape: inputs
 * the fuzzer found (tests/fixtures/fuzz/), which crashed the scan with a TypeError before a
 * META was checked for its shape.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scanSpool } from '../../../src/encoder/spool-scan.js';
import { TallenneError } from '../../../src/errors.js';
import { tempDir } from '../../support/cleanup.js';

function fuzzSpool(name: string): string {
  const f = JSON.parse(readFileSync(new URL(`../../fixtures/fuzz/${name}`, import.meta.url), 'utf8')) as { input: { data: string } };
  const path = join(tempDir('spool-scan'), `${name}.spool`);
  writeFileSync(path, Buffer.from(f.input.data, 'base64'));
  return path;
}

describe('scanSpool on META records of the wrong shape', () => {
  it('refuses a spool whose only META has a format of null (fuzz spool-1-1403) as corrupt', async () => {
    const err = await scanSpool(fuzzSpool('spool-1-1403.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TallenneError);
    expect((err as TallenneError).code).toBe('TALLENNE_SPOOL_CORRUPT');
  });

  it('keeps the last good META when a later one has a leg of null (fuzz spool-1-5876)', async () => {
    const scan = await scanSpool(fuzzSpool('spool-1-5876.json'));
    expect(scan.meta.legs.map((l) => l.index)).toEqual([0, 1]);
    expect(scan.allFormats.map((f) => f.codec).sort()).toEqual(['PCMU', 'TELEPHONE-EVENT']);
  });

  it('skips a META whose formats are an object, not a list (fuzz spool-1-7694)', async () => {
    const scan = await scanSpool(fuzzSpool('spool-1-7694.json'));
    expect(scan.meta.callId).toBe('fuzz@127.0.0.1');
    expect(scan.meta.legs).toHaveLength(2);
  });
});
