import { describe, it, expect } from 'vitest';
import { buildSdpAnswer, chooseFormats, isPausedMedia, parseSdp, type MediaAnswer, type SdpMedia } from '../../../src/sip/sdp.js';
import { parseInviteBody } from '../../../src/sip/body.js';
import { ProtocolError } from '../../../src/errors.js';
import { sampleInvite } from './samples.js';

const sdpOf = (name: string) => parseInviteBody(sampleInvite(name).contentType, sampleInvite(name).body).sdp;
const lines = (...l: string[]) => l.join('\r\n') + '\r\n';

function sdpError(text: string): ProtocolError {
  try {
    parseSdp(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as ProtocolError).code).toBe('TALLENNE_SDP_MALFORMED');
    expect((e as ProtocolError).status).toBe(400);
    return e as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('parseSdp', () => {
  it('reads the RFC 7866 offer: 2 audio + 2 video, labels, sendonly', () => {
    const sdp = sdpOf('rfc7866-invite-example.sip');
    expect(sdp.originVersion).toBe('2890844526');
    expect(sdp.sessionAddress).toBe('198.51.100.10');
    expect(sdp.media.map((m) => [m.index, m.type, m.port, m.proto, m.label, m.direction])).toEqual([
      [0, 'audio', 49170, 'RTP/AVP', '96', 'sendonly'],
      [1, 'video', 49174, 'RTP/AVPF', '97', 'sendonly'],
      [2, 'audio', 51372, 'RTP/AVP', '98', 'sendonly'],
      [3, 'video', 49176, 'RTP/AVPF', '99', 'sendonly'],
    ]);
    expect(sdp.media[1]!.formats).toEqual([{ pt: 96, encoding: 'H.264', clockRate: 90000, channels: 1 }]);
  });

  it('fills static payload types without rtpmap (BroadWorks)', () => {
    const sdp = sdpOf('miarec-broadworks-invite.sip');
    expect(sdp.media[0]!.formats).toEqual([{ pt: 8, encoding: 'PCMA', clockRate: 8000, channels: 1, codec: 'PCMA' }]);
    expect(sdp.media[0]!.direction).toBe('sendrecv');
  });

  it('uses media-level c= and keeps fmtp (Cisco)', () => {
    const m = sdpOf('drachtio-cisco-cube.body').media[1]!;
    expect(m.address).toBe('172.31.93.236');
    expect(m.formats[1]).toEqual({ pt: 101, encoding: 'telephone-event', clockRate: 8000, channels: 1, fmtp: '0-16', codec: 'TELEPHONE-EVENT' });
    expect(m.label).toBe('2');
  });

  it('accepts an offer without any c= line (OpenSIPS) and unknown codecs (GSM)', () => {
    const sdp = sdpOf('drachtio-opensips-connectel.body');
    expect(sdp.sessionAddress).toBeNull();
    expect(sdp.media[0]!.address).toBeNull();
    expect(sdp.media[0]!.formats.map((f) => [f.pt, f.encoding, f.codec])).toEqual([
      [0, 'PCMU', 'PCMU'], [8, 'PCMA', 'PCMA'], [3, 'GSM', undefined], [101, 'telephone-event', 'TELEPHONE-EVENT'],
    ]);
  });

  it('reads text labels and ignores a=direction:both (SEMS)', () => {
    const sdp = sdpOf('drachtio-procomm-sems.body');
    expect(sdp.media.map((m) => [m.label, m.direction])).toEqual([['a_leg', 'sendonly'], ['b_leg', 'sendonly']]);
  });

  it('reads rtcp, rtcp-mux, crypto, IPv6 and session-level direction', () => {
    const sdp = parseSdp(lines(
      'v=0', 'o=- 1 7 IN IP6 ::1', 's=-', 'c=IN IP6 2001:db8::1', 't=0 0', 'a=inactive',
      'm=audio 4000 RTP/SAVP 111', 'a=rtpmap:111 opus/48000/2', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz',
      'a=rtcp:4001', 'a=rtcp-mux', 'a=sendrecv',
      'm=audio 4002 RTP/AVP 0',
    ));
    expect(sdp.originVersion).toBe('7');
    expect(sdp.media[0]).toMatchObject({ address: '2001:db8::1', direction: 'sendrecv', rtcpPort: 4001, rtcpMux: true, crypto: true });
    expect(sdp.media[0]!.formats[0]).toEqual({ pt: 111, encoding: 'opus', clockRate: 48000, channels: 2, codec: 'OPUS' });
    expect(sdp.media[1]).toMatchObject({ direction: 'inactive', rtcpMux: false, crypto: false });
  });

  it('rejects what is not an SDP offer', () => {
    expect(sdpError('').message).toMatch(/empty|v=0/);
    sdpError('hello world');
    sdpError(lines('v=1', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 1 RTP/AVP 0'));
    expect(sdpError(lines('v=0', 'm=audio 1 RTP/AVP 0')).message).toMatch(/o= line/);
    expect(sdpError(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4')).message).toMatch(/m= line/);
    sdpError(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 99999 RTP/AVP 0'));
    sdpError(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 1 RTP/AVP 200'));
    sdpError(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'c=IN XX 1', 'm=audio 1 RTP/AVP 0'));
    sdpError(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 1 RTP/AVP 0', 'a=rtpmap:0'));
    expect(sdpError('v=0\r\n' + 'a=x\r\n'.repeat(70_000)).message).toMatch(/too large/);
    const many = lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', ...Array.from({ length: 20 }, () => 'm=audio 1 RTP/AVP 0'));
    expect(sdpError(many).message).toMatch(/too many m-lines/);
  });
});

describe('isPausedMedia', () => {
  it('sees a=inactive (Cisco) and c=0.0.0.0 (BroadWorks pause) but not a normal offer', () => {
    expect(sdpOf('drachtio-cisco-inactive.body').media.map(isPausedMedia)).toEqual([true, true]);
    expect(sdpOf('miarec-broadworks-reinvite-pause.sip').media.map(isPausedMedia)).toEqual([true]);
    expect(sdpOf('miarec-broadworks-invite.sip').media.map(isPausedMedia)).toEqual([false]);
    expect(sdpOf('drachtio-cisco-cube.body').media.map(isPausedMedia)).toEqual([false, false]);
  });
  it('sees port 0 and c=IN IP6 ::', () => {
    const sdp = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'c=IN IP6 ::', 'm=audio 5 RTP/AVP 0', 'm=audio 0 RTP/AVP 0', 'c=IN IP4 1.2.3.4'));
    expect(sdp.media.map(isPausedMedia)).toEqual([true, true]);
  });
});

describe('chooseFormats', () => {
  const g711 = ['PCMU', 'PCMA'] as const;
  it('takes the first supported codec in offer order plus telephone-event', () => {
    const avaya = sdpOf('miarec-avaya-sbce-invite.sip').media[0]!;
    expect(chooseFormats(avaya, g711)).toEqual([
      { pt: 0, codec: 'PCMU', clockRate: 8000, channels: 1 },
      { pt: 101, codec: 'TELEPHONE-EVENT', clockRate: 8000, channels: 1 },
    ]);
    expect(chooseFormats(avaya, ['PCMA'])![0]).toEqual({ pt: 8, codec: 'PCMA', clockRate: 8000, channels: 1 });
    const connectel = sdpOf('drachtio-opensips-connectel.body').media;
    expect(chooseFormats(connectel[1]!, g711)![0]!.codec).toBe('PCMA');
  });
  it('adds CN at the same clock rate', () => {
    const m = sdpOf('drachtio-cisco-inactive.body').media[0]!;
    expect(chooseFormats(m, g711)!.map((f) => f.codec)).toEqual(['PCMU', 'TELEPHONE-EVENT', 'CN']);
  });
  it('does not pair events at another clock rate', () => {
    const sdp = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 5 RTP/AVP 111 101 102',
      'a=rtpmap:111 opus/48000/2', 'a=rtpmap:101 telephone-event/8000', 'a=rtpmap:102 telephone-event/48000'));
    expect(chooseFormats(sdp.media[0]!, ['OPUS'])).toEqual([
      { pt: 111, codec: 'OPUS', clockRate: 48000, channels: 2 },
      { pt: 102, codec: 'TELEPHONE-EVENT', clockRate: 48000, channels: 1 },
    ]);
  });
  it('returns null when nothing is recordable (the 488 case)', () => {
    const sdp = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 5 RTP/AVP 18 101', 'a=rtpmap:101 telephone-event/8000',
      'm=audio 6 UDP/TLS/RTP/SAVP 0', 'a=fingerprint:sha-256 AB:CD', 'm=audio 7 RTP/AVP 0'));
    expect(sdp.media.map((m) => chooseFormats(m, ['PCMA']))).toEqual([null, null, null]);
    const video = sdpOf('rfc7866-invite-example.sip').media[1]!;
    expect(chooseFormats(video, ['PCMU'])).toBeNull();
    expect(chooseFormats(sdpOf('drachtio-acme-oracle-sbc.body').media[0]!, ['PCMA'])).toBeNull();
  });
});

describe('SRTP m-lines', () => {
  const offer = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'c=IN IP4 1.2.3.4',
    'm=audio 6 RTP/SAVP 0', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc', 'a=crypto:2 AEAD_AES_256_GCM inline:def|2^20|1:4 KDR=1',
    'm=audio 8 RTP/SAVPF 8', 'm=audio 10 RTP/AVP 0'));
  it('keeps every a=crypto value as offered, in order', () => {
    expect(offer.media.map((m) => m.cryptoAttributes)).toEqual([
      ['1 AES_CM_128_HMAC_SHA1_80 inline:abc', '2 AEAD_AES_256_GCM inline:def|2^20|1:4 KDR=1'], [], [],
    ]);
    expect(offer.media.map((m) => m.crypto)).toEqual([true, true, false]);
  });
  it('chooses formats on RTP/SAVP and RTP/SAVPF as on plain RTP (the keys are sdes.ts\'s question)', () => {
    expect(offer.media.map((m) => chooseFormats(m, ['PCMU', 'PCMA'])?.[0]?.codec)).toEqual(['PCMU', 'PCMA', 'PCMU']);
  });
  it('answers an SRTP m-line with its profile kept and our a=crypto; a plain one without', () => {
    const fmt = [{ pt: 0, codec: 'PCMU' as const, clockRate: 8000, channels: 1 }];
    const answer = buildSdpAnswer({
      offer, address: '127.0.0.1', sessionId: '1', version: 1, userAgent: 't',
      media: [
        { index: 0, port: 20000, formats: fmt, direction: 'recvonly', rtcpMux: false, crypto: '1 AES_CM_128_HMAC_SHA1_80 inline:OURKEY' },
        { index: 2, port: 20002, formats: fmt, direction: 'recvonly', rtcpMux: false },
      ],
    });
    expect(answer).toContain('m=audio 20000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:OURKEY\r\n');
    expect(answer).toContain('m=audio 0 RTP/SAVPF 8\r\n');
    expect(answer.match(/a=crypto/g)).toHaveLength(1);
  });
});

describe('buildSdpAnswer', () => {
  it('answers the RFC 7866 offer: audio accepted recvonly with labels, video rejected, same order', () => {
    const offer = sdpOf('rfc7866-invite-example.sip');
    const media: MediaAnswer[] = offer.media
      .filter((m) => chooseFormats(m, ['PCMU']) !== null)
      .map((m, i) => ({ index: m.index, port: 30000 + 2 * i, formats: chooseFormats(m, ['PCMU'])!, direction: 'recvonly', label: m.label!, rtcpMux: m.rtcpMux }));
    const text = buildSdpAnswer({ offer, address: '127.0.0.1', sessionId: '4242', version: 1, media, userAgent: 'tallenne/0.1' });
    expect(text).toBe(lines(
      'v=0', 'o=tallenne 4242 1 IN IP4 127.0.0.1', 's=tallenne/0.1', 'c=IN IP4 127.0.0.1', 't=0 0',
      'm=audio 30000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=label:96', 'a=recvonly',
      'm=video 0 RTP/AVPF 96',
      'm=audio 30002 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=label:98', 'a=recvonly',
      'm=video 0 RTP/AVPF 96',
    ));
    // The answer is itself a valid SDP with as many m-lines as the offer.
    expect(parseSdp(text).media.map((m) => [m.port, m.label ?? null])).toEqual([[30000, '96'], [0, null], [30002, '98'], [0, null]]);
  });

  it('writes IP6, telephone-event with the offered fmtp, inactive, rtcp-mux echo and text labels', () => {
    const offer = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'c=IN IP4 1.2.3.4',
      'm=audio 5 RTP/AVP 8 101', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', 'a=label:a_leg', 'a=rtcp-mux', 'a=sendonly',
      'm=audio 7 RTP/AVP 8', 'a=label:b_leg'));
    const m0 = offer.media[0]!;
    const m1 = offer.media[1]!;
    const text = buildSdpAnswer({
      offer, address: '::1', sessionId: '9', version: 3, userAgent: 'rec',
      media: [
        { index: 0, port: 20000, formats: chooseFormats(m0, ['PCMA'])!, direction: 'recvonly', label: 'a_leg', rtcpMux: true },
        { index: 1, port: 20002, formats: chooseFormats(m1, ['PCMA'])!, direction: 'inactive', label: 'b_leg', rtcpMux: true },
      ],
    });
    expect(text).toContain('o=tallenne 9 3 IN IP6 ::1\r\ns=rec\r\nc=IN IP6 ::1\r\n');
    expect(text).toContain('m=audio 20000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:a_leg\r\na=recvonly\r\na=rtcp-mux\r\n');
    // rtcp-mux is only echoed when it was offered.
    expect(text.endsWith('m=audio 20002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=label:b_leg\r\na=inactive\r\n')).toBe(true);
    expect(text).not.toMatch(/[^\r]\n/);
  });

  it('rejects every m-line when nothing is accepted', () => {
    const offer = sdpOf('drachtio-cisco-cube.body');
    const text = buildSdpAnswer({ offer, address: '127.0.0.1', sessionId: '1', version: 1, media: [], userAgent: 'x' });
    expect(text.match(/^m=.*$/gm)).toEqual(['m=audio 0 RTP/AVP 0 101', 'm=audio 0 RTP/AVP 0 101']);
  });

  it('keeps the m-line for a label-less paused offer and writes rtpmap for Opus stereo', () => {
    const offer = parseSdp(lines('v=0', 'o=- 1 1 IN IP4 1.2.3.4', 'm=audio 5 RTP/AVP 111', 'a=rtpmap:111 opus/48000/2'));
    const m: SdpMedia = offer.media[0]!;
    const text = buildSdpAnswer({ offer, address: '10.1.1.1', sessionId: '1', version: 1, userAgent: 'x',
      media: [{ index: 0, port: 1234, formats: chooseFormats(m, ['OPUS'])!, direction: 'recvonly', rtcpMux: false }] });
    expect(text).toContain('m=audio 1234 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=recvonly\r\n');
  });
});
