/** The RTP source rules, as a table: strict against the offer, latch on the first accepted source. */
import { describe, expect, it } from 'vitest';
import { RELATCH_GAP_MS, SourceFilter } from '../../../src/rtp/source-filter.js';

const OFFER = { address: '192.0.2.10', rtpPort: 4000, rtcpPort: 4001 };

describe('strict', () => {
  const f = new SourceFilter('strict', OFFER);
  it('takes RTP only from the offered address and port', () => {
    expect(f.checkRtp('192.0.2.10', 4000, 1, 0)).toBeNull();
    expect(f.checkRtp('::ffff:192.0.2.10', 4000, 1, 0)).toBeNull();
    expect(f.checkRtp('192.0.2.10', 4002, 1, 0)).toBe('wrong_source');
    expect(f.checkRtp('192.0.2.11', 4000, 1, 0)).toBe('wrong_source');
  });
  it('takes RTCP from the offered RTCP port or the RTP port (mux), nowhere else', () => {
    expect(f.checkRtcp('192.0.2.10', 4001)).toBeNull();
    expect(f.checkRtcp('192.0.2.10', 4000)).toBeNull();
    expect(f.checkRtcp('192.0.2.10', 5001)).toBe('wrong_source');
    expect(f.checkRtcp('192.0.2.99', 4001)).toBe('wrong_source');
  });
  it('follows a re-offer that moves the media; an offer without an address takes nothing', () => {
    const g = new SourceFilter('strict', OFFER);
    g.setOffered({ address: '192.0.2.20', rtpPort: 6000, rtcpPort: 6001 });
    expect(g.checkRtp('192.0.2.10', 4000, 1, 0)).toBe('wrong_source');
    expect(g.checkRtp('192.0.2.20', 6000, 1, 0)).toBeNull();
    expect(new SourceFilter('strict', { address: null, rtpPort: 4000, rtcpPort: 4001 }).checkRtp('192.0.2.10', 4000, 1, 0)).toBe('wrong_source');
  });
});

describe('latch', () => {
  it('takes anyone until a packet is accepted, then only that source', () => {
    const f = new SourceFilter('latch', OFFER);
    expect(f.checkRtp('198.51.100.1', 7000, 1, 0)).toBeNull();
    expect(f.source).toBeNull();
    f.accepted('198.51.100.1', 7000, 1, 0);
    expect(f.source).toMatchObject({ address: '198.51.100.1', port: 7000 });
    expect(f.checkRtp('198.51.100.1', 7000, 1, 20)).toBeNull();
    f.accepted('198.51.100.1', 7000, 1, 20);
    // Another port or address, same or new SSRC, while the latched source is live.
    expect(f.checkRtp('198.51.100.1', 7002, 1, 40)).toBe('second_source');
    expect(f.checkRtp('198.51.100.2', 7000, 2, 40)).toBe('second_source');
    // RTCP from the latched address on any port; from elsewhere not.
    expect(f.checkRtcp('198.51.100.1', 7001)).toBeNull();
    expect(f.checkRtcp('198.51.100.2', 7001)).toBe('second_source');
  });
  it('re-latches on a new SSRC after the latched source fell silent, never on the same SSRC', () => {
    const f = new SourceFilter('latch', OFFER);
    f.accepted('198.51.100.1', 7000, 1, 0);
    const later = RELATCH_GAP_MS;
    expect(f.checkRtp('198.51.100.2', 8000, 1, later)).toBe('second_source');
    expect(f.checkRtp('198.51.100.2', 8000, 2, later - 1)).toBe('second_source');
    expect(f.checkRtp('198.51.100.2', 8000, 2, later)).toBeNull();
    f.accepted('198.51.100.2', 8000, 2, later);
    expect(f.checkRtp('198.51.100.1', 7000, 1, later + 20)).toBe('second_source');
  });
  it('lets go when a re-offer moves the media, not when it repeats it', () => {
    const f = new SourceFilter('latch', OFFER);
    f.accepted('198.51.100.1', 7000, 1, 0);
    f.setOffered({ ...OFFER });
    expect(f.checkRtp('198.51.100.2', 7000, 2, 1)).toBe('second_source');
    f.setOffered({ address: '192.0.2.30', rtpPort: 4000, rtcpPort: 4001 });
    expect(f.source).toBeNull();
    expect(f.checkRtp('198.51.100.2', 7000, 2, 2)).toBeNull();
  });
});
