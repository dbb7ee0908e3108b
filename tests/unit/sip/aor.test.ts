import { describe, it, expect } from 'vitest';
import { userOfAor } from '../../../src/sip/aor.js';

describe('userOfAor', () => {
  it.each([
    ['sip:+358401234567@x;user=phone', '+358401234567'],
    ['sips:1001@pbx.example.com:5061;transport=tls', '1001'],
    ['tel:+1-555-123', '+1555123'],
    ['tel:+358.40.123(4567);phone-context=+358', '+358401234567'],
    ['7602922410', '7602922410'],
    ['Extension-016190619@speechpath.ie', 'Extension-016190619'],
    ['"Alice Agent" <sip:1001@pbx>;tag=abc', '1001'],
    ['<sip:1001@pbx>', '1001'],
    ['sip:8638254725', '8638254725'],
    ['sip:bob@biloxi.com', 'bob'],
    ['sip:%2B358401234567@host', '+358401234567'],
    ['SIP:2000@Example.COM', '2000'],
    ['sip:ASBCE@asbce.com', 'ASBCE'],
    ['sip:+1%20555%20123@h', '+1555123'],
  ])('%s → %s', (aor, user) => {
    expect(userOfAor(aor)).toBe(user);
  });

  it.each([
    [''],
    ['   '],
    ['sip:10.0.0.20:5060'],
    ['sip:@host'],
    ['<sip:1001@pbx'],
    ['urn:uuid:c703d8c4-ac5b-4000-a8ad-a3342ff26072'],
    ['x'.repeat(2000)],
  ])('nothing usable in %j', (aor) => {
    expect(userOfAor(aor)).toBeUndefined();
  });
});
