/**
 * SDP offers from recording clients, and the recorder's answers (RFC 4566, RFC 3264,
 * RFC 7866 §8 for SIPREC's a=label).
 *
 * The parser reads only what a recorder acts on: per m-line the port, protocol, formats,
 * address, direction, label, RTCP port/mux and the SDES keys offered (a=crypto, read by
 * sdes.ts). It is
 * line-based with hard limits and tolerates what real SRCs send: no c= line at all
 * (OpenSIPS), media-level c= lines (Cisco), static payload types without rtpmap
 * (BroadWorks), and unknown attributes such as a=direction:both (SEMS).
 */
import { ProtocolError } from '../errors.js';
import type { CodecName, MediaFormat } from '../types.js';

export interface SdpFormat {
  pt: number;
  /** Encoding name as offered (case kept). */
  encoding: string;
  clockRate: number;
  channels: number;
  fmtp?: string;
  /** Set when the encoding is one the engine knows. */
  codec?: CodecName;
}

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface SdpMedia {
  /** Position of the m-line in the offer, from 0. */
  index: number;
  type: string;
  port: number;
  proto: string;
  /** Connection address (media-level, else session-level); null when the offer has none. */
  address: string | null;
  direction: SdpDirection;
  label?: string;
  formats: SdpFormat[];
  rtcpPort?: number;
  rtcpMux: boolean;
  /** SDES keys (a=crypto) or a secure profile (RTP/SAVP...) are offered. */
  crypto: boolean;
  /** The a=crypto values as offered, in the offer's order (sdes.ts parses them). */
  cryptoAttributes: string[];
}

export interface SdpOffer {
  /** The o= line's sess-version: a change means the offer changed. */
  originVersion: string;
  sessionAddress: string | null;
  media: SdpMedia[];
}

export const SDP_LIMITS = {
  maxBytes: 65_536,
  maxLines: 2_000,
  maxMedia: 16,
  maxFormatsPerMedia: 32,
} as const;

/** RFC 3551 static payload types that may appear without an rtpmap. */
const STATIC_PT: Readonly<Record<number, readonly [string, number, number]>> = {
  0: ['PCMU', 8000, 1],
  3: ['GSM', 8000, 1],
  4: ['G723', 8000, 1],
  8: ['PCMA', 8000, 1],
  9: ['G722', 8000, 1],
  10: ['L16', 44100, 2],
  11: ['L16', 44100, 1],
  13: ['CN', 8000, 1],
  18: ['G729', 8000, 1],
};

const KNOWN_CODECS: ReadonlySet<string> = new Set<CodecName>(['PCMU', 'PCMA', 'G722', 'L16', 'OPUS', 'TELEPHONE-EVENT', 'CN']);

function codecOf(encoding: string): CodecName | undefined {
  const up = encoding.toUpperCase();
  return KNOWN_CODECS.has(up) ? (up as CodecName) : undefined;
}

function malformed(reason: string): ProtocolError {
  return new ProtocolError('TALLENNE_SDP_MALFORMED', 400, reason);
}

/** Parses `c=IN IP4 addr[/ttl]`; returns the address. */
function parseConnection(value: string, lineNo: number): string {
  const f = value.trim().split(/\s+/);
  if (f.length < 3 || f[0] !== 'IN' || (f[1] !== 'IP4' && f[1] !== 'IP6')) throw malformed(`line ${lineNo}: malformed c= line`);
  return f[2]!.split('/')[0]!;
}

interface MediaDraft {
  media: SdpMedia;
  address: string | null;
  direction: SdpDirection | null;
  rtpmap: Map<number, { encoding: string; clockRate: number; channels: number }>;
  fmtp: Map<number, string>;
  pts: number[];
}

const DIRECTIONS: ReadonlySet<string> = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

/** Parses an SDP offer. Throws ProtocolError('TALLENNE_SDP_MALFORMED', 400) with the reason. */
export function parseSdp(text: string): SdpOffer {
  if (text.length > SDP_LIMITS.maxBytes) throw malformed('SDP body is too large');
  const lines = text.split(/\r?\n/);
  if (lines.length > SDP_LIMITS.maxLines) throw malformed('SDP body has too many lines');

  let originVersion: string | undefined;
  let sessionAddress: string | null = null;
  let sessionDirection: SdpDirection | null = null;
  let sawVersion = false;
  const drafts: MediaDraft[] = [];
  let cur: MediaDraft | undefined;

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '') continue;
    const lineNo = i + 1;
    if (line.length < 2 || line[1] !== '=') throw malformed(`line ${lineNo}: not a type=value line`);
    const kind = line[0]!;
    const value = line.slice(2);
    if (!sawVersion) {
      if (kind !== 'v' || value.trim() !== '0') throw malformed('SDP does not start with v=0');
      sawVersion = true;
      continue;
    }
    switch (kind) {
      case 'o': {
        const f = value.trim().split(/\s+/);
        if (f.length !== 6) throw malformed(`line ${lineNo}: malformed o= line`);
        originVersion = f[2]!;
        break;
      }
      case 'c': {
        const addr = parseConnection(value, lineNo);
        if (cur) cur.address = addr;
        else sessionAddress = addr;
        break;
      }
      case 'm': {
        if (drafts.length >= SDP_LIMITS.maxMedia) throw malformed('SDP has too many m-lines');
        const f = value.trim().split(/\s+/);
        if (f.length < 4) throw malformed(`line ${lineNo}: malformed m= line`);
        const port = Number(f[1]!.split('/')[0]);
        if (!/^\d+(\/\d+)?$/.test(f[1]!) || port > 65535) throw malformed(`line ${lineNo}: bad port in m= line`);
        const fmts = f.slice(3);
        if (fmts.length > SDP_LIMITS.maxFormatsPerMedia) throw malformed(`line ${lineNo}: too many formats`);
        const rtp = /^(UDP\/TLS\/)?RTP\//i.test(f[2]!);
        const pts: number[] = [];
        if (rtp) {
          for (const fmt of fmts) {
            if (!/^\d{1,3}$/.test(fmt) || Number(fmt) > 127) throw malformed(`line ${lineNo}: bad RTP payload type "${fmt.slice(0, 10)}"`);
            pts.push(Number(fmt));
          }
        }
        cur = {
          media: {
            index: drafts.length,
            type: f[0]!.toLowerCase(),
            port,
            proto: f[2]!,
            address: null,
            direction: 'sendrecv',
            formats: [],
            rtcpMux: false,
            crypto: /SAVP/i.test(f[2]!),
            cryptoAttributes: [],
          },
          address: null,
          direction: null,
          rtpmap: new Map(),
          fmtp: new Map(),
          pts,
        };
        drafts.push(cur);
        break;
      }
      case 'a': {
        const colon = value.indexOf(':');
        const name = (colon < 0 ? value : value.slice(0, colon)).trim().toLowerCase();
        const arg = colon < 0 ? '' : value.slice(colon + 1).trim();
        if (DIRECTIONS.has(name)) {
          if (cur) cur.direction = name as SdpDirection;
          else sessionDirection = name as SdpDirection;
          break;
        }
        if (!cur) break;
        if (name === 'rtpmap') {
          const m = /^(\d{1,3})\s+([^/\s]+)\/(\d+)(?:\/(\d+))?$/.exec(arg);
          if (!m) throw malformed(`line ${lineNo}: malformed a=rtpmap`);
          cur.rtpmap.set(Number(m[1]), { encoding: m[2]!, clockRate: Number(m[3]), channels: m[4] === undefined ? 1 : Number(m[4]) });
        } else if (name === 'fmtp') {
          const m = /^(\d{1,3})\s+(.*)$/.exec(arg);
          if (m) cur.fmtp.set(Number(m[1]), m[2]!);
        } else if (name === 'label') {
          if (arg !== '') cur.media.label = arg;
        } else if (name === 'rtcp') {
          const p = Number(arg.split(/\s+/)[0]);
          if (Number.isInteger(p) && p > 0 && p <= 65535) cur.media.rtcpPort = p;
        } else if (name === 'rtcp-mux') {
          cur.media.rtcpMux = true;
        } else if (name === 'crypto') {
          cur.media.crypto = true;
          cur.media.cryptoAttributes.push(arg);
        }
        break;
      }
      default:
        // s=, t=, b=, i=, k=... carry nothing a recorder acts on.
        break;
    }
  }
  if (!sawVersion) throw malformed('SDP body is empty');
  if (originVersion === undefined) throw malformed('SDP has no o= line');
  if (drafts.length === 0) throw malformed('SDP has no m= line');

  const media = drafts.map((d) => {
    const m = d.media;
    m.address = d.address ?? sessionAddress;
    m.direction = d.direction ?? sessionDirection ?? 'sendrecv';
    for (const pt of d.pts) {
      const map = d.rtpmap.get(pt);
      const stat = STATIC_PT[pt];
      const encoding = map?.encoding ?? stat?.[0];
      if (encoding === undefined) continue; // dynamic type without rtpmap: unusable, skip it
      const fmt: SdpFormat = {
        pt,
        encoding,
        clockRate: map?.clockRate ?? stat![1],
        channels: map?.channels ?? stat![2],
      };
      const fmtp = d.fmtp.get(pt);
      if (fmtp !== undefined) fmt.fmtp = fmtp;
      const codec = codecOf(encoding);
      if (codec !== undefined) fmt.codec = codec;
      m.formats.push(fmt);
    }
    return m;
  });
  return { originVersion, sessionAddress, media };
}

/**
 * True when the client is not sending on this m-line for now: a=inactive (Cisco), a
 * null connection address (BroadWorks pauses with c=IN IP4 0.0.0.0), or port 0.
 */
export function isPausedMedia(m: SdpMedia): boolean {
  if (m.port === 0) return true;
  if (m.direction === 'inactive' || m.direction === 'recvonly') return true;
  return m.address === '0.0.0.0' || m.address === '::' || m.address === '0:0:0:0:0:0:0:0';
}

/** RTP profiles whose formats we read: plain (AVP, AVPF) and SDES-keyed SRTP (SAVP, SAVPF). */
const RTP_PROFILE = /^RTP\/S?AVPF?$/i;

/**
 * Picks what to receive on one m-line: the first audio codec in the offer's order that
 * the engine supports, plus telephone-event and CN at the same clock rate if offered.
 * Returns null when nothing can be recorded (not audio, not an RTP/(S)AVP(F) profile, or
 * no supported codec), which the caller answers with port 0 or a 488. Whether the keys of
 * an SRTP m-line can be used is sdes.ts's question, not this one's.
 */
export function chooseFormats(m: SdpMedia, supported: readonly CodecName[]): MediaFormat[] | null {
  if (m.type !== 'audio' || !RTP_PROFILE.test(m.proto)) return null;
  const audio = m.formats.find(
    (f) => f.codec !== undefined && f.codec !== 'TELEPHONE-EVENT' && f.codec !== 'CN' && supported.includes(f.codec),
  );
  if (audio === undefined) return null;
  const out: MediaFormat[] = [{ pt: audio.pt, codec: audio.codec!, clockRate: audio.clockRate, channels: audio.channels }];
  for (const extra of ['TELEPHONE-EVENT', 'CN'] as const) {
    const f = m.formats.find((x) => x.codec === extra && x.clockRate === audio.clockRate);
    if (f) out.push({ pt: f.pt, codec: extra, clockRate: f.clockRate, channels: f.channels });
  }
  return out;
}

export interface MediaAnswer {
  /** Index of the offered m-line this answers. */
  index: number;
  /** Our RTP port; 0 rejects the m-line. */
  port: number;
  formats: MediaFormat[];
  direction: 'recvonly' | 'inactive';
  label?: string;
  rtcpMux: boolean;
  /** Our a=crypto value (sdes.ts buildCryptoAnswer) when the m-line is SRTP. */
  crypto?: string;
}

/** Encoding names as written in a=rtpmap. */
const RTPMAP_NAME: Readonly<Record<CodecName, string>> = {
  PCMU: 'PCMU',
  PCMA: 'PCMA',
  G722: 'G722',
  L16: 'L16',
  OPUS: 'opus',
  'TELEPHONE-EVENT': 'telephone-event',
  CN: 'CN',
};

/**
 * Builds the SDP answer: one m-line per offered m-line, in the offer's order (RFC 3264
 * §6). m-lines without an accepted MediaAnswer are rejected with port 0. Lines end in CRLF.
 */
export function buildSdpAnswer(opts: {
  offer: SdpOffer;
  address: string;
  sessionId: string;
  version: number;
  media: readonly MediaAnswer[];
  userAgent: string;
}): string {
  const ipv = opts.address.includes(':') ? 'IP6' : 'IP4';
  const name = opts.userAgent.replace(/[\r\n]/g, ' ').trim() || '-';
  const lines: string[] = [
    'v=0',
    `o=tallenne ${opts.sessionId} ${opts.version} IN ${ipv} ${opts.address}`,
    `s=${name}`,
    `c=IN ${ipv} ${opts.address}`,
    't=0 0',
  ];
  const byIndex = new Map(opts.media.map((a) => [a.index, a]));
  for (const offered of opts.offer.media) {
    const ans = byIndex.get(offered.index);
    if (ans === undefined || ans.port === 0 || ans.formats.length === 0) {
      // RFC 3264 §6: a rejected stream keeps the offered format list, port 0.
      const fmts = offered.formats.length > 0 ? offered.formats.map((f) => f.pt).join(' ') : '0';
      lines.push(`m=${offered.type} 0 ${offered.proto} ${fmts}`);
      continue;
    }
    lines.push(`m=${offered.type} ${ans.port} ${offered.proto} ${ans.formats.map((f) => f.pt).join(' ')}`);
    for (const f of ans.formats) {
      const ch = f.channels > 1 ? `/${f.channels}` : '';
      lines.push(`a=rtpmap:${f.pt} ${RTPMAP_NAME[f.codec]}/${f.clockRate}${ch}`);
      const fmtp = offered.formats.find((o) => o.pt === f.pt)?.fmtp;
      if (fmtp !== undefined) lines.push(`a=fmtp:${f.pt} ${fmtp}`);
    }
    if (ans.crypto !== undefined) lines.push(`a=crypto:${ans.crypto}`);
    const label = ans.label ?? offered.label;
    if (label !== undefined) lines.push(`a=label:${label}`);
    lines.push(`a=${ans.direction}`);
    if (ans.rtcpMux && offered.rtcpMux) lines.push('a=rtcp-mux');
  }
  return lines.join('\r\n') + '\r\n';
}
