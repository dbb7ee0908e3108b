/** How a request marks itself as SIPREC, and the session-timer grant. */
import { describe, expect, it } from 'vitest';
import { requestMarksSiprec } from '../../../src/sip/siprec.js';
import { sessionTimerGrant } from '../../../src/sip/session-timer.js';
import type { SipHeader } from '../../../src/sip/message.js';

const h = (...pairs: Array<[string, string]>): SipHeader[] => pairs.map(([name, value]) => ({ name, value }));

describe('requestMarksSiprec', () => {
  it.each([
    ['Require: siprec', h(['require', 'timer, siprec'])],
    ['+sip.src header parameter', h(['contact', '<sip:src@192.0.2.20>;+sip.src'])],
    [';src header parameter', h(['contact', '<sip:src@192.0.2.20:5060;transport=tcp>;src'])],
    ['+sip.src with a value, any case', h(['contact', '"SRC" <sip:src@192.0.2.20>;expires=60;+SIP.SRC="true"'])],
    ['src inside the URI', h(['contact', '<sip:src@192.0.2.20;src>'])],
    ['the second Contact of a list', h(['contact', '<sip:a@192.0.2.21>, <sip:src@192.0.2.20>;+sip.src'])],
  ])('recognises %s', (_, headers) => {
    expect(requestMarksSiprec(headers)).toBe(true);
  });

  it.each([
    ['a plain Contact', h(['contact', '<sip:caller@192.0.2.20>'])],
    ['a user part named src', h(['contact', '<sip:src@192.0.2.20>'])],
    ['a look-alike parameter', h(['contact', '<sip:a@192.0.2.20>;srcport=5;+sip.srs'])],
    ['Supported: siprec only', h(['supported', 'siprec'])],
    ['an unreadable Contact', h(['contact', '<sip:broken'])],
  ])('does not take %s as SIPREC', (_, headers) => {
    expect(requestMarksSiprec(headers)).toBe(false);
  });
});

describe('sessionTimerGrant', () => {
  it('grants the interval asked with the client refreshing, and requires timer only from a client that supports it', () => {
    expect(sessionTimerGrant(h(['session-expires', '1800;refresher=uac'], ['supported', 'timer']))).toEqual({
      sessionExpires: { seconds: 1800, refresher: 'uac' }, requireTimer: true,
    });
    expect(sessionTimerGrant(h(['session-expires', '600']))).toEqual({ sessionExpires: { seconds: 600, refresher: 'uac' }, requireTimer: false });
    expect(sessionTimerGrant(h(['session-expires', 'soon']))).toBeUndefined();
    expect(sessionTimerGrant(h(['supported', 'timer']))).toBeUndefined();
  });
});
