/**
 * SDP offers mutated line by line and field by field (RFC 4566): m= ports, profiles and
 * format lists, c= lines, rtpmap/fmtp/rtcp attributes, direction, and a=crypto (RFC 4568,
 * RFC 7714) with broken keys, lifetimes, MKIs and session parameters.
 */
import type { Rng } from '../rng.js';
import { mutateLines, mutateNumber, splitLines } from '../mutate.js';

const PROTOS = ['RTP/AVP', 'RTP/SAVP', 'RTP/SAVPF', 'RTP/AVPF', 'UDP/TLS/RTP/SAVPF', 'udp', 'RTP/', 'TCP/MSRP', ''];
const SUITES = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM', 'AEAD_AES_256_GCM', 'F8_128_HMAC_SHA1_80', 'AES_256_CM_HMAC_SHA1_80', 'x'.repeat(80), ''];
const PARAMS = ['UNENCRYPTED_SRTP', 'UNENCRYPTED_SRTCP', 'UNAUTHENTICATED_SRTP', 'KDR=0', 'KDR=24', 'KDR=25', 'KDR=', 'WSH=64', 'WSH=63', 'WSH=99999999999', 'FEC_ORDER=FEC_SRTP', 'FEC_ORDER=X', 'FEC_KEY=inline:AAAA', '-OPTIONAL', '-', '=', 'UNKNOWN'];

function base64ish(rng: Rng): string {
  const n = rng.pick([40, 44, 30, 38, 56, 60, 0, 1, 200]);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[rng.int(alphabet.length)];
  return s + rng.pick(['', '=', '==', '===', '!', ' ']);
}

/** One a=crypto value, valid in shape or broken in one of its fields. */
export function cryptoValue(rng: Rng): string {
  const tag = rng.pick(['1', '0', '9', '123456789', '1234567890', '-1', 'a', '']);
  const keys: string[] = [];
  const nKeys = rng.chance(0.8) ? 1 : rng.range(2, 20);
  for (let k = 0; k < nKeys; k++) {
    let key = `${rng.pick(['inline:', 'inline:', 'INLINE:', 'uri:', ''])}${base64ish(rng)}`;
    if (rng.chance(0.4)) key += `|${rng.pick(['2^31', '2^48', '2^49', '2^0', '2^', '2^999', '1048576', '0', '999999999999999999', 'x'])}`;
    if (rng.chance(0.4)) key += `|${rng.pick([`${k + 1}:4`, '1:1', '256:1', '0:0', '1:129', '1:128', `${'9'.repeat(400)}:128`, ':', '1:', ':4', '1:4:4'])}`;
    if (rng.chance(0.05)) key += '|1|2|3';
    keys.push(key);
  }
  const params = Array.from({ length: rng.chance(0.5) ? rng.int(4) : rng.int(20) }, () => rng.pick(PARAMS));
  return [tag, rng.pick(SUITES), keys.join(';'), ...params].join(rng.pick([' ', ' ', '\t', '  ']));
}

function attributeLine(rng: Rng): string {
  switch (rng.int(9)) {
    case 0: return `a=crypto:${cryptoValue(rng)}`;
    case 1: return `a=rtpmap:${rng.pick(['0', '96', '101', '128', '999', 'x'])} ${rng.pick(['PCMU', 'opus', 'telephone-event', 'G722', 'L16', 'CN', '', 'a/b'])}/${rng.pick(['8000', '48000', '0', '', '99999999999'])}${rng.pick(['', '/2', '/0', '/', '/x'])}`;
    case 2: return `a=fmtp:${rng.pick(['101', '96', '', 'x'])} ${rng.pick(['0-16', 'maxplaybackrate=16000', '', ';;;'])}`;
    case 3: return `a=rtcp:${rng.pick(['0', '1', '65535', '65536', '-5', 'x', '9 IN IP4 127.0.0.1', ''])}`;
    case 4: return `a=${rng.pick(['sendrecv', 'sendonly', 'recvonly', 'inactive', 'SENDONLY', 'rtcp-mux', 'direction:both', 'label:', `label:${'L'.repeat(rng.range(1, 5000))}`])}`;
    case 5: return `m=${rng.pick(['audio', 'video', 'AUDIO', 'application', ''])} ${rng.pick(['0', '9', '16384', '65535', '65536', '1/2', '5/', 'x', '-1'])} ${rng.pick(PROTOS)} ${Array.from({ length: rng.chance(0.9) ? rng.range(1, 4) : rng.range(30, 40) }, () => rng.pick(['0', '8', '9', '101', '127', '128', '96', 'x', '-1', '0000'])).join(' ')}`;
    case 6: return `c=${rng.pick(['IN IP4 127.0.0.1', 'IN IP6 ::1', 'IN IP4 0.0.0.0', 'IN IP4 224.2.1.1/127/3', 'IN', 'IN IP5 x', 'OUT IP4 1.2.3.4', ''])}`;
    case 7: return `o=${rng.pick(['- 1 1 IN IP4 127.0.0.1', '- 1 IN IP4', 'a b c d e f g', ''])}`;
    default: return `${rng.pick(['v=0', 'v=1', 's=', 't=0 0', 'b=AS:64', 'x=', '=', 'a', 'é=ü'])}`;
  }
}

export function mutateSdp(rng: Rng, sdp: string): string {
  let lines = splitLines(sdp);
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  for (let r = rng.range(1, 3); r > 0; r--) {
    switch (rng.int(5)) {
      case 0:
      case 1: { // an attribute or field line of our own, at a random place
        const at = rng.int(lines.length + 1);
        lines.splice(at, 0, attributeLine(rng) + eol);
        break;
      }
      case 2: { // a number in one line
        if (lines.length === 0) break;
        const i = rng.int(lines.length);
        lines[i] = mutateNumber(rng, lines[i]!);
        break;
      }
      case 3: { // many m-lines or many lines
        const m = lines.find((l) => l.startsWith('m=')) ?? `m=audio 9 RTP/AVP 0${eol}`;
        lines.push(...Array<string>(rng.pick([15, 16, 17, 40])).fill(m));
        if (rng.chance(0.2)) lines.push(...Array<string>(2100).fill(`a=x${eol}`));
        break;
      }
      default:
        lines = mutateLines(rng, lines);
    }
  }
  return lines.join('');
}
