/**
 * The body of an INVITE, re-INVITE or UPDATE to the recorder: an SDP offer alone (plain SIP,
 * or a SIPREC re-INVITE without metadata), multipart/mixed with the SDP and the SIPREC
 * metadata in either order plus parts we do not use (Cisco's application/gtd), or, inside a
 * dialog, the SIPREC metadata alone (RFC 7866 §9.1: a metadata update without an offer).
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

/** The body of an in-dialog request: an offer, metadata, or both. */
export interface SessionBody {
  sdp?: SdpOffer;
  metadata?: RecordingMetadata;
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
 * Parses an INVITE body, which must carry an SDP offer. Throws ProtocolError: 415 for a body
 * type we cannot use, 400 for a malformed body, a body without SDP, or unusable metadata.
 */
export function parseInviteBody(contentTypeHeader: string | undefined, body: Buffer): InviteBody {
  if (body.length === 0) throw sipError(400, 'INVITE has no SDP offer (offerless INVITE is not supported)');
  const parsed = parseSessionBody(contentTypeHeader, body);
  if (parsed.sdp === undefined) {
    throw new ProtocolError('TALLENNE_NO_OFFER', 400, parsed.metadata ? 'INVITE carries metadata but no application/sdp offer' : 'multipart body has no application/sdp part');
  }
  const out: InviteBody = { sdp: parsed.sdp, ignoredParts: parsed.ignoredParts };
  if (parsed.metadata !== undefined) out.metadata = parsed.metadata;
  return out;
}

/**
 * Parses a non-empty body of an in-dialog request (re-INVITE or UPDATE): SDP, rs-metadata
 * alone, or multipart with either or both. Throws ProtocolError as parseInviteBody does.
 */
export function parseSessionBody(contentTypeHeader: string | undefined, body: Buffer): SessionBody {
  if (contentTypeHeader === undefined || contentTypeHeader.trim() === '') {
    throw sipError(400, 'body has no Content-Type');
  }
  const ct = parseContentType(contentTypeHeader);
  if (ct.type === 'application/sdp') {
    return { sdp: parseSdp(body.toString('utf8')), ignoredParts: [] };
  }
  if (METADATA_TYPES.has(ct.type)) {
    return { metadata: parseRecordingMetadata(body.toString('utf8')), ignoredParts: [] };
  }
  if (!ct.type.startsWith('multipart/')) throw new ProtocolError('TALLENNE_UNSUPPORTED_MEDIA_TYPE', 415, `unsupported body type ${ct.type}`);

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
      // metadata silently missing would store the wrong roles, so refuse the request.
      throw new ProtocolError('TALLENNE_METADATA_MALFORMED', 400, `recording-session part has unsupported type ${part.contentType}`);
    } else {
      if (part.contentType === 'application/gtd') guid ??= gciOfGtd(part.body);
      ignoredParts.push(part.contentType);
    }
  }
  if (sdp === undefined && metadata === undefined) throw sipError(400, 'multipart body has neither an application/sdp nor a metadata part');
  if (metadata !== undefined && guid !== undefined && metadata.extensions['cisco.guid'] === undefined) {
    metadata.extensions['cisco.guid'] = guid;
  }
  const out: SessionBody = { ignoredParts };
  if (sdp !== undefined) out.sdp = sdp;
  if (metadata !== undefined) out.metadata = metadata;
  return out;
}
