import { describe, expect, it } from 'vitest';
import { scrubDigits } from '../../src/log.js';

describe('scrubDigits', () => {
  it('hides numbers quoted by parser messages, in any spelling, and keeps short figures', () => {
    expect(scrubDigits('bad address "sip:+358401234567@host"')).toBe('bad address "sip:[digits]@host"');
    expect(scrubDigits('bad From "040 123 4567"')).toBe('bad From "[digits]"');
    expect(scrubDigits('tel:+1-555-123-4567;x')).toBe('tel:[digits];x');
    expect(scrubDigits('CSeq 1 INVITE on port 5060, line 12')).toBe('CSeq 1 INVITE on port 5060, line 12');
  });
});
