/**
 * Who is the customer, who is the organisation's side, and which offered m-line carries
 * whose voice.
 *
 * Parties come from the SIPREC metadata participants (document order), or, without
 * metadata, from the From (caller) and To / Request-URI (callee) of a plain SIP INVITE.
 * Each party is classified by the configured rules, strongest first: an extension in the
 * agents directory, one of the organisation's service numbers, the internal extension
 * pattern. A call between one organisation party and an unknown one is inbound or
 * outbound depending on who called; between organisation parties it is internal; with no
 * rule matching the vendor's direction is used if the metadata states one, and otherwise
 * the caller is taken to be the customer (the recorder usually sits on an inbound line).
 *
 * Channels are fixed by role, never by who sent first: customer left (0), organisation
 * right (1). Stream ownership comes from the metadata's send associations; a stream sent
 * by several participants (or marked mixed) is a mixed leg. Without any ownership, two
 * audio m-lines are caller then callee. m-lines nobody claims get the remaining channel.
 *
 * The clear numbers in the result are for this call's memory only: mask them before they
 * are stored, never log them.
 */
import type { AgentConfig } from '../config/schema.js';
import type { RecordingMetadata } from '../sip/metadata.js';
import type { SdpMedia } from '../sip/sdp.js';
import { userOfAor } from '../sip/aor.js';
import { sameNumber } from '../privacy/numbers.js';
import type { Direction, Role } from '../types.js';

export interface Party {
  uri?: string;
  /** Clear number or extension, memory only. Derived from `uri` when absent. */
  user?: string;
  displayName?: string;
}

export interface RoleRules {
  serviceNumbers: readonly string[];
  internalPattern: RegExp;
  agents: readonly AgentConfig[];
  /** Country code for comparing national-format numbers ("0201234567") with E.164 ones ("+358201234567"). */
  defaultCountry?: string;
}

export interface RoleInput {
  metadata?: RecordingMetadata;
  from: Party;
  to: Party;
  requestUser?: string;
  /** The offer's m-lines. */
  media: readonly SdpMedia[];
}

export interface AssignedLeg {
  /** m-line index. */
  index: number;
  label?: string;
  role: Role;
  channel: 0 | 1;
  participantId?: string;
  /** The stream carries several participants (mixed by the client). */
  mixed?: boolean;
}

export interface AssignedParticipant {
  id: string;
  role: Role;
  /** Clear number or extension: memory only. */
  user?: string;
  agentId?: string;
  agentName?: string;
  team?: string;
  /** A configured rule (agents directory, service number, internal pattern) claims this party. */
  organisation: boolean;
  sendsLabels: string[];
  /** The party left the call (the metadata gives its disassociate-time). */
  left?: boolean;
}

export interface RoleAssignment {
  direction: Direction;
  serviceNumber?: string;
  customer?: { participantId?: string; user?: string };
  agent?: { participantId?: string; extension?: string; agentId?: string; agentName?: string; team?: string };
  /** Audio m-lines only, in offer order. */
  legs: AssignedLeg[];
  participants: AssignedParticipant[];
}

type Kind = 'agent' | 'service' | 'internal' | 'unknown';

interface PartyView {
  /** Participant id, or "from"/"to" for plain SIP. */
  id: string;
  participantId?: string;
  user?: string;
  /** Stream ids sent (metadata only). */
  sends: readonly string[];
  caller: boolean;
  /** The metadata says the party left (disassociate-time). */
  left: boolean;
  kind: Kind;
  agent?: AgentConfig;
  role: Role;
  side?: 0 | 1;
}

const KIND_RANK: Readonly<Record<Kind, number>> = { agent: 0, internal: 1, service: 2, unknown: 3 };

function classify(user: string | undefined, rules: RoleRules): { kind: Kind; agent?: AgentConfig } {
  if (user === undefined) return { kind: 'unknown' };
  const agent = rules.agents.find((a) => a.extensions.some((e) => sameNumber(e, user, rules.defaultCountry)));
  if (agent !== undefined) return { kind: 'agent', agent };
  if (rules.serviceNumbers.some((n) => sameNumber(n, user, rules.defaultCountry))) return { kind: 'service' };
  // A copy of the pattern so that a /g or /y flag cannot carry lastIndex between calls.
  if (new RegExp(rules.internalPattern.source, rules.internalPattern.flags.replace(/[gy]/g, '')).test(user)) {
    return { kind: 'internal' };
  }
  return { kind: 'unknown' };
}

function partiesOf(input: RoleInput, rules: RoleRules): PartyView[] {
  const md = input.metadata;
  if (md !== undefined && md.participants.length > 0) {
    // A party that left (disassociated) keeps its place: the call's customer and caller do
    // not change because someone hung up first. Only a snapshot without it drops it.
    const list = md.participants;
    const callerIdx = Math.max(0, list.findIndex((p) => p.callingParty === true));
    return list.map((p, i) => {
      const user = p.aor === undefined ? undefined : userOfAor(p.aor);
      const c = classify(user, rules);
      const v: PartyView = { id: p.id, participantId: p.id, sends: p.sends, caller: i === callerIdx, left: p.disassociatedAt !== undefined, kind: c.kind, role: 'other' };
      if (user !== undefined) v.user = user;
      if (c.agent !== undefined) v.agent = c.agent;
      return v;
    });
  }
  const fromUser = input.from.user ?? (input.from.uri === undefined ? undefined : userOfAor(input.from.uri));
  const toUser = input.to.user ?? (input.to.uri === undefined ? undefined : userOfAor(input.to.uri)) ?? input.requestUser;
  return [
    { id: 'from', user: fromUser, caller: true },
    { id: 'to', user: toUser, caller: false },
  ].map(({ id, user, caller }) => {
    const c = classify(user, rules);
    const v: PartyView = { id, sends: [], caller, left: false, kind: c.kind, role: 'other' };
    if (user !== undefined) v.user = user;
    if (c.agent !== undefined) v.agent = c.agent;
    return v;
  });
}

/** Decides direction, the customer and the organisation's representative; sets roles and sides. */
function decide(parties: PartyView[], md: RecordingMetadata | undefined): { direction: Direction; customer?: PartyView; agent?: PartyView } {
  const caller = parties.find((p) => p.caller) ?? parties[0];
  const org = parties.filter((p) => p.kind !== 'unknown');
  const unknown = parties.filter((p) => p.kind === 'unknown');
  // The organisation's representative: one still in the call before one who left, then by rule.
  const bestOrg = [...org].sort((a, b) => Number(a.left) - Number(b.left) || KIND_RANK[a.kind] - KIND_RANK[b.kind])[0];
  for (const p of org) p.role = 'agent';

  if (org.length > 0 && unknown.length > 0) {
    const customer = caller !== undefined && caller.kind === 'unknown' ? caller : unknown[0]!;
    customer.role = 'customer';
    // Every party outside the organisation is heard on the customer's side (a second
    // caller joined to a conference, a transfer target outside): left is "outside".
    for (const p of unknown) p.side = 0;
    for (const p of org) p.side = 1;
    return { direction: customer === caller ? 'inbound' : 'outbound', customer, agent: bestOrg! };
  }
  if (org.length > 0) {
    // Organisation parties only: an internal call, laid out caller left.
    for (const p of org) p.side = p === caller ? 0 : 1;
    const agent = bestOrg!.kind === 'agent' ? bestOrg! : org.find((p) => p !== caller) ?? bestOrg!;
    return { direction: parties.length > 1 ? 'internal' : 'unknown', agent };
  }
  if (caller === undefined) return { direction: 'unknown' };
  // No rule matched: the vendor's own direction, else the caller is the customer.
  const direction: Direction = md?.callDirection ?? 'unknown';
  const callee = parties.find((p) => p !== caller);
  const customer = direction === 'outbound' && callee !== undefined ? callee : caller;
  const agent = customer === caller ? callee : caller;
  customer.role = 'customer';
  customer.side = 0;
  if (agent !== undefined) {
    agent.role = 'agent';
    agent.side = 1;
  }
  const out: { direction: Direction; customer?: PartyView; agent?: PartyView } = { direction, customer };
  if (agent !== undefined) out.agent = agent;
  return out;
}

export function assignRoles(input: RoleInput, rules: RoleRules): RoleAssignment {
  const md = input.metadata;
  const parties = partiesOf(input, rules);
  const { direction, customer, agent } = decide(parties, md);

  const audio = input.media.filter((m) => m.type === 'audio');
  type Claim = { owner?: PartyView; mixed: boolean };
  const claims: Claim[] = audio.map((m) => {
    if (md === undefined || m.label === undefined) return { mixed: false };
    const stream = md.streams.find((s) => s.label === m.label && s.id !== '');
    if (stream === undefined) return { mixed: false };
    const senders = parties.filter((p) => p.sends.includes(stream.id));
    // A stream handed from a party who left to one who joined (transfer) is the new party's.
    const owners = senders.some((p) => !p.left) ? senders.filter((p) => !p.left) : senders;
    if (stream.mode === 'mixed' || owners.length > 1) return { mixed: true };
    return owners.length === 1 ? { owner: owners[0]!, mixed: false } : { mixed: false };
  });
  // Nobody claims any offered stream: two audio m-lines are the caller's, then the callee's.
  if (claims.every((c) => c.owner === undefined && !c.mixed) && audio.length === 2 && parties.length >= 2) {
    const caller = parties.find((p) => p.caller) ?? parties[0]!;
    const callee = parties.find((p) => p !== caller)!;
    claims[0] = { owner: caller, mixed: false };
    claims[1] = { owner: callee, mixed: false };
  }

  const perParty = claims.some((c) => c.owner !== undefined);
  const legs: (AssignedLeg | undefined)[] = audio.map(() => undefined);
  const used = new Set<number>();
  const withLeg = new Set<PartyView>();
  audio.forEach((m, i) => {
    const owner = claims[i]!.owner;
    if (owner === undefined || owner.side === undefined) return;
    const leg: AssignedLeg = { index: m.index, role: owner.role, channel: owner.side };
    if (m.label !== undefined) leg.label = m.label;
    if (owner.participantId !== undefined) leg.participantId = owner.participantId;
    legs[i] = leg;
    used.add(owner.side);
    withLeg.add(owner);
  });
  audio.forEach((m, i) => {
    if (legs[i] !== undefined) return;
    const claim = claims[i]!;
    const channel: 0 | 1 = !used.has(0) ? 0 : !used.has(1) ? 1 : 1;
    used.add(channel);
    const leg: AssignedLeg = { index: m.index, role: 'other', channel };
    if (m.label !== undefined) leg.label = m.label;
    if (claim.mixed) {
      leg.mixed = true;
    } else if (claim.owner !== undefined) {
      // A third party (conference) with no side of its own.
      if (claim.owner.participantId !== undefined) leg.participantId = claim.owner.participantId;
    } else if (perParty) {
      // Unclaimed m-line beside per-party ones: it belongs to the main party still without a
      // leg on this side. A lone unclaimed m-line (plain SIP) may be a mix: left as "other".
      const party = parties.find((p) => p.side === channel && !withLeg.has(p));
      if (party !== undefined) {
        leg.role = party.role;
        if (party.participantId !== undefined) leg.participantId = party.participantId;
        withLeg.add(party);
      }
    }
    legs[i] = leg;
  });

  const labelsOf = (p: PartyView): string[] => {
    const out: string[] = [];
    if (md !== undefined) {
      for (const id of p.sends) {
        const label = md.streams.find((s) => s.id === id && id !== '')?.label;
        if (label !== undefined && !out.includes(label)) out.push(label);
      }
    }
    for (const [i, l] of legs.entries()) {
      const label = audio[i]!.label;
      if (l?.participantId === p.participantId && p.participantId !== undefined && label !== undefined && !out.includes(label)) out.push(label);
      if (p.participantId === undefined && claims[i]?.owner === p && label !== undefined && !out.includes(label)) out.push(label);
    }
    return out;
  };

  const participants: AssignedParticipant[] = parties.map((p) => {
    const a: AssignedParticipant = { id: p.id, role: p.role, organisation: p.kind !== 'unknown', sendsLabels: labelsOf(p) };
    if (p.left) a.left = true;
    if (p.user !== undefined) a.user = p.user;
    if (p.agent !== undefined) {
      a.agentId = p.agent.id;
      a.agentName = p.agent.name;
      if (p.agent.team !== undefined) a.team = p.agent.team;
    }
    return a;
  });

  const out: RoleAssignment = { direction, legs: legs.filter((l): l is AssignedLeg => l !== undefined), participants };
  const service = parties.find((p) => p.kind === 'service')?.user
    ?? (input.requestUser !== undefined && rules.serviceNumbers.some((n) => sameNumber(n, input.requestUser!, rules.defaultCountry)) ? input.requestUser : undefined);
  if (service !== undefined) out.serviceNumber = service;
  if (customer !== undefined) {
    out.customer = {};
    if (customer.participantId !== undefined) out.customer.participantId = customer.participantId;
    if (customer.user !== undefined) out.customer.user = customer.user;
  }
  if (agent !== undefined) {
    out.agent = {};
    if (agent.participantId !== undefined) out.agent.participantId = agent.participantId;
    if ((agent.kind === 'agent' || agent.kind === 'internal') && agent.user !== undefined) out.agent.extension = agent.user;
    if (agent.agent !== undefined) {
      out.agent.agentId = agent.agent.id;
      out.agent.agentName = agent.agent.name;
      if (agent.agent.team !== undefined) out.agent.team = agent.agent.team;
    }
  }
  return out;
}
