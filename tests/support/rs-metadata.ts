/**
 * Builds RFC 7865 recording metadata for call-feature tests: any number of participants and
 * streams, complete or partial, with a group, join/leave times, and optionally a namespace
 * prefix (`tns:`) as some clients write it.
 */

export interface MdParticipant {
  readonly id: string;
  readonly aor?: string;
  /** Stream ids the participant sends. */
  readonly sends?: readonly string[];
  readonly receives?: readonly string[];
  /** ISO time of a disassociate-time: the participant left. */
  readonly leftAt?: string;
  readonly joinedAt?: string;
}

export interface MdDoc {
  readonly mode?: 'complete' | 'partial';
  readonly sessionId?: string;
  readonly groupId?: string;
  readonly participants: readonly MdParticipant[];
  readonly streams?: ReadonlyArray<{ readonly id: string; readonly label: string }>;
  /** Writes every element with this namespace prefix, e.g. "tns". */
  readonly prefix?: string;
}

export function rsMetadataDoc(doc: MdDoc): string {
  const p = doc.prefix ? `${doc.prefix}:` : '';
  const xmlns = doc.prefix ? `xmlns:${doc.prefix}` : 'xmlns';
  const sid = doc.sessionId ?? 'c2Vzc2lvbi0x';
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', `<${p}recording ${xmlns}="urn:ietf:params:xml:ns:recording:1">`];
  out.push(`  <${p}datamode>${doc.mode ?? 'complete'}</${p}datamode>`);
  if (doc.groupId !== undefined) out.push(`  <${p}group group_id="${doc.groupId}"><${p}associate-time>2026-01-01T10:00:00Z</${p}associate-time></${p}group>`);
  out.push(`  <${p}session session_id="${sid}">${doc.groupId !== undefined ? `<${p}group-ref>${doc.groupId}</${p}group-ref>` : ''}</${p}session>`);
  for (const part of doc.participants) {
    if (part.aor !== undefined) {
      out.push(`  <${p}participant participant_id="${part.id}"><${p}nameID aor="${part.aor}"/></${p}participant>`);
    }
    if (part.joinedAt !== undefined || part.leftAt !== undefined) {
      out.push(`  <${p}participantsessionassoc participant_id="${part.id}" session_id="${sid}">`
        + (part.joinedAt !== undefined ? `<${p}associate-time>${part.joinedAt}</${p}associate-time>` : '')
        + (part.leftAt !== undefined ? `<${p}disassociate-time>${part.leftAt}</${p}disassociate-time>` : '')
        + `</${p}participantsessionassoc>`);
    }
  }
  for (const s of doc.streams ?? []) {
    out.push(`  <${p}stream stream_id="${s.id}" session_id="${sid}"><${p}label>${s.label}</${p}label></${p}stream>`);
  }
  for (const part of doc.participants) {
    if (part.sends === undefined && part.receives === undefined) continue;
    out.push(`  <${p}participantstreamassoc participant_id="${part.id}">`
      + (part.sends ?? []).map((x) => `<${p}send>${x}</${p}send>`).join('')
      + (part.receives ?? []).map((x) => `<${p}recv>${x}</${p}recv>`).join('')
      + `</${p}participantstreamassoc>`);
  }
  out.push(`</${p}recording>`, '');
  return out.join('\r\n');
}

/** An SDP offer with one sendonly audio m-line per label (PCMU/PCMA/telephone-event/CN). */
export function offerSdp(labels: readonly string[], opts: { version?: number; direction?: string; codecs?: string; address?: string } = {}): string {
  const addr = opts.address ?? '127.0.0.1';
  const ip = addr.includes(':') ? 'IP6' : 'IP4';
  const lines = ['v=0', `o=SRC 2890844526 ${opts.version ?? 1} IN ${ip} ${addr}`, 's=-', `c=IN ${ip} ${addr}`, 't=0 0'];
  labels.forEach((label, i) => {
    lines.push(
      `m=audio ${40000 + 2 * i} RTP/AVP ${opts.codecs ?? '0 8 101 13'}`,
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      'a=fmtp:101 0-15',
      'a=rtpmap:13 CN/8000',
      `a=label:${label}`,
      `a=${opts.direction ?? 'sendonly'}`,
    );
  });
  return lines.join('\r\n') + '\r\n';
}

/** multipart/mixed with the SDP and the metadata; `metadataFirst` swaps the order. */
export function multipart(sdp: string, metadata: string, opts: { boundary?: string; metadataType?: string; metadataFirst?: boolean } = {}): { body: string; contentType: string } {
  const b = opts.boundary ?? 'tallenne-features';
  const sdpPart = ['Content-Type: application/sdp', '', sdp];
  const mdPart = [`Content-Type: ${opts.metadataType ?? 'application/rs-metadata+xml'}`, 'Content-Disposition: recording-session', '', metadata];
  const parts = opts.metadataFirst ? [mdPart, sdpPart] : [sdpPart, mdPart];
  const body = [...parts.flatMap((p) => [`--${b}`, ...p]), `--${b}--`, ''].join('\r\n');
  return { body, contentType: `multipart/mixed;boundary=${b}` };
}
