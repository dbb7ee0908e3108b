import { describe, it, expect } from 'vitest';
import { statSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { maskNumber, normalizeE164, NumberHasher, protectNumber, sameNumber } from '../../../src/privacy/numbers.js';
import { KeyFileError } from '../../../src/secrets/key-file.js';
import { tempDir } from '../../support/cleanup.js';

describe('normalizeE164', () => {
  const cases: Array<[string, string | null]> = [
    // Finnish mobile
    ['040 123 4567', '+358401234567'],
    ['0401234567', '+358401234567'],
    ['+358 40 123 4567', '+358401234567'],
    ['00358401234567', '+358401234567'],
    ['358401234567', '+358401234567'],
    ['tel:+358-40-1234567', '+358401234567'],
    ['sip:+358401234567@sbc.example;user=phone', '+358401234567'],
    ['"Matti M" <sip:0401234567@10.0.0.1>;tag=1', '+358401234567'],
    ['050-765 4321', '+358507654321'],
    // Finnish landline with area code
    ['(09) 123 4567', '+35891234567'],
    ['09 1234 567', '+35891234567'],
    ['017 123 456', '+35817123456'],
    // Finnish service numbers
    ['0200 12345', '+35820012345'],
    ['0800 123 456', '+358800123456'],
    ['010 123 4567', '+358101234567'],
    ['0100 5577', '+3581005577'],
    ['0295 50 2000', '+358295502000'],
    // International
    ['+46 8 123 456 78', '+46812345678'],
    ['0046812345678', '+46812345678'],
    ['+1 (212) 555-0100', '+12125550100'],
    ['12125550100', '+12125550100'],
    // Not customer numbers
    ['1001', null],
    ['112', null],
    ['0200', null],
    ['anonymous', null],
    ['sip:anonymous@anonymous.invalid', null],
    ['+0401234567', null],
    ['+1234567890123456', null],
    ['', null],
    ['12345', null],
    ['x'.repeat(300), null],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input.slice(0, 40))} → ${want}`, () => {
      expect(normalizeE164(input, '358')).toBe(want);
    });
  }
  it('uses the configured default country for national forms', () => {
    expect(normalizeE164('08 123 456 78', '46')).toBe('+46812345678');
    expect(normalizeE164('0401234567', '46')).toBe('+46401234567');
  });
  it('without a default country, places only numbers that carry their country code', () => {
    expect(normalizeE164('+358 40 123 4567', undefined)).toBe('+358401234567');
    expect(normalizeE164('00358401234567', undefined)).toBe('+358401234567');
    expect(normalizeE164('12125550100', undefined)).toBe('+12125550100');
    expect(normalizeE164('0401234567', undefined)).toBeNull();
    expect(normalizeE164('358401234', undefined)).toBeNull();
  });
});

describe('sameNumber', () => {
  const same: Array<[string, string, string | undefined]> = [
    ['0200 100', '0200100', undefined],
    ['1001', '1001', undefined],
    ['alice', 'alice', undefined],
    ['+358 20 123 4567', '00358201234567', undefined],
    ['+358201234567', '020-123 4567', '358'],
    ['(09) 123 4567', '+35891234567', '358'],
    ['+17602922410', '7602922410', undefined],
    ['7602922410', '0017602922410', undefined],
    ['358401234567', '+358401234567', undefined],
  ];
  for (const [a, b, cc] of same) {
    it(`${a} is ${b}${cc ? ` (country ${cc})` : ''}`, () => {
      expect(sameNumber(a, b, cc)).toBe(true);
      expect(sameNumber(b, a, cc)).toBe(true);
    });
  }
  const different: Array<[string, string, string | undefined]> = [
    // A national form cannot be placed without the default country.
    ['+358201234567', '0201234567', undefined],
    ['1001', '1002', undefined],
    ['1001', '101', undefined],
    ['alice', 'Alice', undefined],
    ['', '', undefined],
    // Too few digits to be the same subscriber without the country code.
    ['+3584012345', '012345', undefined],
    // Both carry their country codes, and they differ.
    ['+17602922410', '+7602922410', undefined],
    ['+358401234567', '+46401234567', '358'],
    ['*100#', '100', undefined],
    ['1'.repeat(300), '1'.repeat(300), undefined],
  ];
  for (const [a, b, cc] of different) {
    it(`${a.slice(0, 20)} is not ${b.slice(0, 20)}${cc ? ` (country ${cc})` : ''}`, () => {
      expect(sameNumber(a, b, cc)).toBe(false);
      expect(sameNumber(b, a, cc)).toBe(false);
    });
  }
});

describe('maskNumber', () => {
  it('hides the trailing digits', () => {
    expect(maskNumber('+358401234567', 3)).toBe('+358401234***');
    expect(maskNumber('+358401234567', 5)).toBe('+3584012*****');
    expect(maskNumber('040 123 4567', 3)).toBe('040 123 4***');
    expect(maskNumber('040 123 4567', 5)).toBe('040 12* ****');
    expect(maskNumber('+358401234567', 0)).toBe('+358401234567');
    expect(maskNumber('123', 5)).toBe('***');
  });
  it('masks Finnish service and international numbers', () => {
    expect(maskNumber(normalizeE164('0800 123 456', '358')!, 3)).toBe('+358800123***');
    expect(maskNumber(normalizeE164('0200 12345', '358')!, 3)).toBe('+35820012***');
    expect(maskNumber(normalizeE164('+46 8 123 456 78', '358')!, 3)).toBe('+46812345***');
  });
});

describe('NumberHasher', () => {
  const dir = tempDir('hash');

  it('creates a 32-byte key with mode 0600 (and its folder) on first open', () => {
    const file = join(dir, 'sub', 'key');
    const h = NumberHasher.open(file);
    expect(h.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).length).toBe(32);
    const again = NumberHasher.open(file);
    expect(again.created).toBe(false);
    expect(again.hash('+358401234567')).toBe(h.hash('+358401234567'));
  });

  it('gives the same hash for every input form, and different keys give different hashes', () => {
    const h = NumberHasher.open(join(dir, 'k2'));
    const forms = ['040 123 4567', '0401234567', '+358 40 123 4567', '00358401234567', 'tel:+358-40-1234567', 'sip:+358401234567@h;user=phone'];
    const hashes = new Set(forms.map((f) => h.hash(normalizeE164(f, '358')!)));
    expect(hashes.size).toBe(1);
    const [one] = hashes;
    expect(one).toMatch(/^[0-9a-f]{64}$/);
    expect(NumberHasher.open(join(dir, 'k3')).hash('+358401234567')).not.toBe(one);
  });

  it('refuses to hash a number that is not normalised', () => {
    const h = NumberHasher.open(join(dir, 'k4'));
    expect(() => h.hash('0401234567')).toThrow(/E\.164/);
  });

  it.each([0o640, 0o604, 0o660])('refuses a key file with mode %o (typed, naming the file and the fix), and rejects a short key', (mode) => {
    const f = join(dir, `open-key-${mode.toString(8)}`);
    writeFileSync(f, Buffer.alloc(32, 7));
    chmodSync(f, mode);
    let err: unknown;
    try {
      NumberHasher.open(f);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KeyFileError);
    expect((err as KeyFileError).code).toBe('TALLENNE_KEY_FILE_INSECURE');
    expect((err as Error).message).toBe(`privacy.hash_key_file: ${f} is open to group or others (mode ${mode.toString(8)}); a key file must be private: chmod 600 ${f}`);
    chmodSync(f, 0o600);
    expect(NumberHasher.open(f).created).toBe(false);
    const short = join(dir, 'short');
    writeFileSync(short, 'abc', { mode: 0o600 });
    expect(() => NumberHasher.open(short)).toThrow(/at least/);
  });

  it('protectNumber never keeps a display name or the clear digits', () => {
    const h = NumberHasher.open(join(dir, 'k5'));
    const p = protectNumber('"Matti Meikäläinen" <sip:0401234567@pbx>', { mask_digits: 3, default_country: '358' }, h);
    expect(p.masked).toBe('+358401234***');
    expect(p.hash).toBe(h.hash('+358401234567'));
    const ext = protectNumber('Matti <sip:1001@pbx>', { mask_digits: 3, default_country: '358' }, h);
    expect(ext).toEqual({ masked: '1***' });
    expect(protectNumber('sip:anonymous@x', { mask_digits: 3, default_country: '358' }, h)).toEqual({ masked: 'withheld' });
  });
});
