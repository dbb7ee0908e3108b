/**
 * What is stored about a call, built by pure functions from the role assignment: the masked
 * call details at answer, their update after a metadata change, the stored participants with
 * their join and leave times, each leg's descriptor, and the index entry of an encoded
 * recording. No clock, no I/O: times and the number protection come in as arguments.
 */
import type { EncodeResult } from '../encoder/encode-spool.js';
import type { StoredAudio } from '../storage/audio-store.js';
import type { RecordingMetadata } from '../sip/metadata.js';
import type { LegDescriptor, MediaFormat, RecordingEntry, StoredParticipant } from '../types.js';
import type { RoleAssignment } from './roles.js';
import type { CallDetails } from './session.js';

/** Masks a clear number (and hashes it when it is a phone number). */
export type ProtectNumber = (user: string) => { readonly masked: string; readonly hash?: string };

/** The descriptor of an offered m-line: its role and channel from the assignment. */
export function legDescriptor(
  media: { readonly index: number; readonly label?: string },
  formats: readonly MediaFormat[],
  roles: RoleAssignment | null,
  fallbackChannel: 0 | 1,
): LegDescriptor {
  const assigned = roles?.legs.find((l) => l.index === media.index);
  return {
    index: media.index,
    ...(media.label ? { label: media.label } : {}),
    role: assigned?.role ?? 'other',
    channel: assigned?.channel ?? fallbackChannel,
    formats,
  };
}

/** The call-level fields the roles decide: direction, customer, service number, agent. */
type RoleFields = Pick<CallDetails, 'direction' | 'customerNumber' | 'customerNumberHash' | 'serviceNumber' | 'agentId' | 'agentName' | 'team'>;

function roleFields(roles: RoleAssignment, protect: ProtectNumber): RoleFields {
  const customer = roles.customer?.user ? protect(roles.customer.user) : undefined;
  return {
    direction: roles.direction,
    ...(customer ? { customerNumber: customer.masked } : {}),
    ...(customer?.hash ? { customerNumberHash: customer.hash } : {}),
    ...(roles.serviceNumber ? { serviceNumber: roles.serviceNumber } : {}),
    ...(roles.agent?.agentId ? { agentId: roles.agent.agentId } : {}),
    ...(roles.agent?.agentName ? { agentName: roles.agent.agentName } : {}),
    ...(roles.agent?.team ? { team: roles.agent.team } : {}),
  };
}

/** Session and group ids and vendor extension ids of the metadata. */
function metadataIds(md: RecordingMetadata | undefined): Pick<CallDetails, 'siprecSessionId' | 'groupId' | 'extensions'> {
  return {
    ...(md?.sessionId ? { siprecSessionId: md.sessionId } : {}),
    ...(md?.groupId ? { groupId: md.groupId } : {}),
    ...(md && Object.keys(md.extensions).length > 0 ? { extensions: md.extensions } : {}),
  };
}

/** The call's details at answer time. */
export function initialDetails(a: {
  id: string;
  callId: string;
  siprec: boolean;
  answeredAt: number;
  roles: RoleAssignment;
  metadata: RecordingMetadata | undefined;
  protect: ProtectNumber;
  /** The recorder answering the call (`[cluster] node_id`). */
  node: string;
}): CallDetails {
  return {
    id: a.id,
    callId: a.callId,
    node: a.node,
    ...metadataIds(a.metadata),
    siprec: a.siprec,
    answeredAt: a.answeredAt,
    ...roleFields(a.roles, a.protect),
    participants: participantsFrom(a.roles, 0, [], a.protect),
  };
}

/**
 * The details after the metadata or the parties changed mid-call, `sinceAnswerMs` after the
 * answer. The customer and agent fields follow the new roles; where the new roles name no
 * customer (or no agent) the earlier one stays, as the recording still holds their voice.
 */
export function updatedDetails(prev: CallDetails, roles: RoleAssignment, metadata: RecordingMetadata | undefined, sinceAnswerMs: number, protect: ProtectNumber): CallDetails {
  const next = roleFields(roles, protect);
  const customerFrom = roles.customer?.user === undefined ? prev : next;
  const agentFrom = roles.agent === undefined ? prev : next;
  const { customerNumber: _c, customerNumberHash: _h, agentId: _a, agentName: _n, team: _t, ...rest } = prev;
  void [_c, _h, _a, _n, _t];
  return {
    ...rest,
    ...metadataIds(metadata),
    direction: next.direction,
    ...(customerFrom.customerNumber ? { customerNumber: customerFrom.customerNumber } : {}),
    ...(customerFrom.customerNumberHash ? { customerNumberHash: customerFrom.customerNumberHash } : {}),
    ...(next.serviceNumber ? { serviceNumber: next.serviceNumber } : {}),
    ...(agentFrom.agentId ? { agentId: agentFrom.agentId } : {}),
    ...(agentFrom.agentName ? { agentName: agentFrom.agentName } : {}),
    ...(agentFrom.team ? { team: agentFrom.team } : {}),
    participants: participantsFrom(roles, sinceAnswerMs, prev.participants, protect),
  };
}

/**
 * Stored participants: numbers masked unless the organisation's, agents by directory id,
 * times of joining and leaving in ms since the answer. The list keeps the order in which
 * parties first appeared; one that left (disassociated) or that is no longer among the
 * current parties (a complete snapshot left it out) gets its leaving time, once.
 */
export function participantsFrom(roles: RoleAssignment, sinceAnswerMs: number, previous: readonly StoredParticipant[], protect: ProtectNumber): StoredParticipant[] {
  const at = Math.max(0, sinceAnswerMs);
  const current = new Map(roles.participants.map((p) => {
    const before = previous.find((x) => x.id === p.id);
    // Only the organisation's own numbers (extensions, service numbers) are kept in clear;
    // any other party's is masked, whatever role the call gave it.
    const number = p.user === undefined ? undefined : p.organisation ? p.user : protect(p.user).masked;
    const stored: StoredParticipant = {
      id: p.id,
      role: p.role,
      ...(number ? { number } : {}),
      ...(p.agentId ? { agentId: p.agentId } : {}),
      ...(p.agentName ? { agentName: p.agentName } : {}),
      // Every stream the participant sent at some point of the recording: a hold or a
      // partial update that drops a <send> does not make earlier audio anyone else's.
      sends: [...new Set([...(before?.sends ?? []), ...p.sendsLabels])],
      joinedMs: before?.joinedMs ?? at,
      // Left: now, unless it had left before. A party that comes back keeps its first
      // joining time and loses its leaving time.
      ...(p.left ? { leftMs: before?.leftMs ?? at } : {}),
    };
    return [p.id, stored] as const;
  }));
  const participants: StoredParticipant[] = previous.map((old) => current.get(old.id) ?? { ...old, leftMs: old.leftMs ?? at });
  for (const [id, p] of current) if (!previous.some((x) => x.id === id)) participants.push(p);
  return participants;
}

/** The index entry of an encoded recording, once its audio is stored. */
export function entryFrom(r: EncodeResult, stored: StoredAudio): RecordingEntry {
  const { legs: _legs, ...meta } = r.meta;
  void _legs;
  return {
    ...meta,
    startedAt: new Date(r.answeredAt).toISOString(),
    endedAt: new Date(r.endedAt).toISOString(),
    durationMs: r.durationMs,
    status: r.status,
    endReason: r.endReason,
    legs: r.legs,
    pauses: r.pauses,
    dtmf: r.dtmf,
    file: stored.key,
    fileBytes: stored.bytes,
    fileSha256: stored.sha256,
    sampleRate: r.sampleRate,
    channels: r.channels,
  };
}
