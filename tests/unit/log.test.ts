import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, scrubDigits } from '../../src/log.js';

describe('scrubDigits', () => {
  it('hides numbers quoted by parser messages, in any spelling, and keeps short figures', () => {
    expect(scrubDigits('bad address "sip:+358401234567@host"')).toBe('bad address "sip:[digits]@host"');
    expect(scrubDigits('bad From "040 123 4567"')).toBe('bad From "[digits]"');
    expect(scrubDigits('tel:+1-555-123-4567;x')).toBe('tel:[digits];x');
    expect(scrubDigits('CSeq 1 INVITE on port 5060, line 12')).toBe('CSeq 1 INVITE on port 5060, line 12');
  });
});

describe('the redaction net', () => {
  it('censors fields that carry secrets, at the top and one level down', () => {
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }));
    log.info({ key: 'K-SECRET', token: 'T-SECRET', req: { headers: { authorization: 'Bearer A-SECRET', cookie: 'tallenne_session=C-SECRET' } }, oidc: { clientSecret: 'O-SECRET' }, block: 'tls' }, 'probe');
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(lines[0]).not.toMatch(/SECRET/);
    expect(o.key).toBe('[redacted]');
    expect(o.block).toBe('tls');
  });
});
