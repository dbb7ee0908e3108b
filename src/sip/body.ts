/**
 * The body of an INVITE (or re-INVITE) to the recorder: an SDP offer alone (plain SIP, or
 * a SIPREC re-INVITE without metadata), or multipart/mixed with the SDP and the SIPREC
 * metadata in either order, plus parts we do not use (Cisco's application/gtd).
 */
import { ProtocolError } from '../errors.js';
import { parseContentType, parseMultipart } from './multipart.js';
import { parseRecordingMetadata, type RecordingMetadata } from './metadata.js';
import { parseSdp, type SdpOffer } from './sdp.js';

export interface InviteBody {
  sdp: SdpOffer;
  metadata?: RecordingMetadata;
  /** Content types of parts that were skipped, e.g. ["application/gtd"]. */
  ignoredParts: string[];
}

const METADATA_TYPES: ReadonlySet<string> = new Set(['application/rs-metadata', 'application/rs-metadata+xml']);

function sipError(status: number, reason: string): ProtocolError {
  return new ProtocolError('TALLENNE_SIP_MALFORMED', status, reason);
}

/**
 * The Global Call Identifier of a Cisco GTD part ("GCI,<32 hex>"): a call id, not a number,
 * so it is kept as `cisco.guid`. Every other GTD line (which can carry numbers) is ignored.
 */
function gciOfGtd(body: Buffer): string | undefined {
  const m = /^GCI,([0-9a-f]{32})\s*$/im.exec(body.toString('latin1', 0, Math.min(body.length, 4096)));
  return m?.[1]?.toLowerCase();
}

/**
 * Parses an INVITE body. Throws ProtocolError: 415 for a body type we cannot use, 400 for
 * a malformed body, a multipart without SDP, or unusable metadata.
 */
export function parseInviteBody(contentTypeHeader: string | undefined, body: Buffer): InviteBody {
  if (body.length === 0) throw sipError(400, 'INVITE has no SDP offer (offerless INVITE is not supported)');
  if (contentTypeHeader === undefined || contentTypeHeader.trim() === '') {
    throw sipError(400, 'INVITE body has no Content-Type');
  }
  const ct = parseContentType(contentTypeHeader);
  if (ct.type === 'application/sdp') {
    return { sdp: parseSdp(body.toString('utf8')), ignoredParts: [] };
  }
  if (!ct.type.startsWith('multipart/')) throw sipError(415, `unsupported body type ${ct.type}`);

  const parts = parseMultipart(contentTypeHeader, body);
  let sdp: SdpOffer | undefined;
  let metadata: RecordingMetadata | undefined;
  let guid: string | undefined;
  const ignoredParts: string[] = [];
  for (const part of parts) {
    const disposition = (part.headers['content-disposition'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (part.contentType === 'application/sdp') {
      if (sdp !== undefined) throw sipError(400, 'multipart body has more than one SDP part');
      sdp = parseSdp(part.body.toString('utf8'));
    } else if (METADATA_TYPES.has(part.contentType)) {
      if (metadata !== undefined) throw sipError(400, 'multipart body has more than one metadata part');
      metadata = parseRecordingMetadata(part.body.toString('utf8'));
    } else if (disposition === 'recording-session') {
      // Declared as the recording metadata but of a type we do not know: recording with
      // metadata silently missing would store the wrong roles, so refuse the INVITE.
      throw new ProtocolError('TALLENNE_METADATA_MALFORMED', 400, `recording-session part has unsupported type ${part.contentType}`);
    } else {
      if (part.contentType === 'application/gtd') guid ??= gciOfGtd(part.body);
      ignoredParts.push(part.contentType);
    }
  }
  if (sdp === undefined) throw sipError(400, 'multipart body has no application/sdp part');
  if (metadata !== undefined && guid !== undefined && metadata.extensions['cisco.guid'] === undefined) {
    metadata.extensions['cisco.guid'] = guid;
  }
  const out: InviteBody = { sdp, ignoredParts };
  if (metadata !== undefined) out.metadata = metadata;
  return out;
}
