/**
 * SIPREC recording metadata (application/rs-metadata+xml) in every dialect seen from real
 * recording clients, reduced to one model: participants, the streams they send and
 * receive, and the session/group ids.
 *
 * Dialects:
 * - `rfc7865`: namespace `urn:ietf:params:xml:ns:recording:1`. Ids in `participant_id`,
 *   `stream_id`, `session_id`, `group_id` attributes; ownership in `participantstreamassoc`.
 * - `draft`: namespace `urn:ietf:params:xml:ns:recording` (no `:1`; Acme/Oracle, Metaswitch).
 *   Ids may be plain `id`/`session` attributes and `<send>`/`<recv>` may sit inside
 *   `<participant>`. Both attribute styles are accepted in every dialect, since vendors mix them.
 * - `broadworks`: root `<recording_metadata xmlns="urn:ietf:params:xml:ns:siprec">`, `<aor>`
 *   directly under `<participant>`, `<send><id>…</id></send>`.
 * Element names are matched without namespace prefix and case-insensitively (`dataMode` and
 * `datamode` both occur).
 *
 * Safety: the document is scanned before it reaches the XML parser. DOCTYPE/ENTITY
 * declarations are refused (entity-expansion bombs), and size, nesting depth and element
 * count are capped, so a hostile body costs one linear pass.
 *
 * `extensions` keeps vendor ids that help to find a call again in the vendor's own
 * systems. Only these keys are produced, and none of them carries a phone number or a name:
 *   oracle.ucid, oracle.realm                         (Acme Packet / Oracle SBC)
 *   cisco.guid                                        (Cisco GUID; also taken from the GTD part by body.ts)
 *   broadworks.extTrackingId, broadworks.callId, broadworks.serviceProviderId,
 *   broadworks.groupId, broadworks.callType, broadworks.recordingType   (BroadWorks/Webex)
 *   metaswitch.callType, metaswitch.systemName        (Metaswitch)
 * Vendor fields that hold numbers (calling/called party numbers, request-URI, PAI headers)
 * are only used in memory to tell which participant called; they are not kept.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ProtocolError } from '../errors.js';
import { sameNumber } from '../privacy/numbers.js';
import { userOfAor } from './aor.js';

export interface RsParticipant {
  id: string;
  aor?: string;
  name?: string;
  /** Stream ids this participant sends. */
  sends: string[];
  receives: string[];
  associatedAt?: string;
  disassociatedAt?: string;
  /** A vendor said whether this participant placed the call (Acme callingParty, BroadWorks/Metaswitch calling number). */
  callingParty?: boolean;
  /** This document declared the participant's streams, so `sends`/`receives` are authoritative (matters for partial updates). */
  streamsDeclared?: boolean;
}

export interface RsStream {
  id: string;
  label?: string;
  sessionId?: string;
  /** `<mode>`: "separate" or "mixed" (BroadWorks, Acme). */
  mode?: string;
}

export interface RecordingMetadata {
  dataMode: 'complete' | 'partial';
  dialect: 'rfc7865' | 'draft' | 'broadworks';
  sessionId?: string;
  groupId?: string;
  sipSessionIds: string[];
  participants: RsParticipant[];
  streams: RsStream[];
  extensions: Record<string, string>;
  /**
   * Direction as the vendor states it from the recorded (organisation's) user's side:
   * BroadWorks termCall/origCall, Metaswitch terminating/originating.
   */
  callDirection?: 'inbound' | 'outbound';
}

export const METADATA_LIMITS = {
  maxBytes: 256 * 1024,
  maxDepth: 32,
  maxElements: 4096,
  maxParticipants: 64,
  maxStreams: 64,
} as const;

const NS_RFC7865 = 'urn:ietf:params:xml:ns:recording:1';
const NS_DRAFT = 'urn:ietf:params:xml:ns:recording';
const NS_SIPREC = 'urn:ietf:params:xml:ns:siprec';
const NS_ACME = 'http://acmepacket.com/siprec/extensiondata';

function malformed(reason: string): ProtocolError {
  return new ProtocolError('TALLENNE_METADATA_MALFORMED', 400, reason);
}

/**
 * One linear pass over the raw text: refuses declarations (DOCTYPE, ENTITY), and caps
 * nesting depth and element count before any tree is built.
 */
function preflight(xml: string): void {
  let depth = 0;
  let elements = 0;
  let i = 0;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) break;
    const c = xml[lt + 1];
    if (c === '?') {
      const end = xml.indexOf('?>', lt + 2);
      if (end < 0) throw malformed('unterminated processing instruction');
      i = end + 2;
    } else if (c === '!') {
      if (xml.startsWith('<!--', lt)) {
        const end = xml.indexOf('-->', lt + 4);
        if (end < 0) throw malformed('unterminated comment');
        i = end + 3;
      } else if (xml.startsWith('<![CDATA[', lt)) {
        const end = xml.indexOf(']]>', lt + 9);
        if (end < 0) throw malformed('unterminated CDATA section');
        i = end + 3;
      } else {
        throw malformed('DOCTYPE and ENTITY declarations are not accepted');
      }
    } else if (c === '/') {
      depth--;
      const end = xml.indexOf('>', lt + 2);
      if (end < 0) throw malformed('unterminated end tag');
      i = end + 1;
    } else {
      // A start tag: find its '>' outside quoted attribute values.
      let j = lt + 1;
      let quote = '';
      for (; j < n; j++) {
        const ch = xml[j]!;
        if (quote !== '') {
          if (ch === quote) quote = '';
        } else if (ch === '"' || ch === "'") {
          quote = ch;
        } else if (ch === '>') {
          break;
        }
      }
      if (j >= n) throw malformed('unterminated start tag');
      if (++elements > METADATA_LIMITS.maxElements) throw malformed('metadata has too many elements');
      if (xml[j - 1] !== '/') {
        depth++;
        if (depth > METADATA_LIMITS.maxDepth) throw malformed('metadata is nested too deeply');
      }
      i = j + 1;
    }
  }
}

/** An element with namespace-resolved, lower-cased local names. */
interface XNode {
  name: string;
  /** The local name as written (for values taken from element names). */
  localName: string;
  ns: string;
  attrs: Record<string, string>;
  children: XNode[];
  /** Concatenated direct text content, trimmed. */
  text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
});

type RawNode = Record<string, unknown>;

function splitQName(qname: string): { prefix: string; local: string } {
  const colon = qname.indexOf(':');
  return colon < 0 ? { prefix: '', local: qname } : { prefix: qname.slice(0, colon), local: qname.slice(colon + 1) };
}

/** Converts fast-xml-parser's ordered output into XNodes, resolving namespace prefixes. */
function toNode(raw: RawNode, scope: ReadonlyMap<string, string>): XNode | null {
  const key = Object.keys(raw).find((k) => k !== ':@');
  if (key === undefined || key === '#text') return null;
  const rawAttrs = (raw[':@'] ?? {}) as Record<string, unknown>;
  let nsScope = scope;
  const attrs: Record<string, string> = {};
  for (const [qn, v] of Object.entries(rawAttrs)) {
    const value = String(v);
    if (qn === 'xmlns' || qn.startsWith('xmlns:')) {
      if (nsScope === scope) nsScope = new Map(scope);
      (nsScope as Map<string, string>).set(qn === 'xmlns' ? '' : qn.slice(6), value);
      continue;
    }
    attrs[splitQName(qn).local.toLowerCase()] = value;
  }
  const { prefix, local } = splitQName(key);
  const node: XNode = { name: local.toLowerCase(), localName: local, ns: nsScope.get(prefix) ?? '', attrs, children: [], text: '' };
  const texts: string[] = [];
  for (const child of (raw[key] ?? []) as RawNode[]) {
    if ('#text' in child) {
      texts.push(String(child['#text']));
      continue;
    }
    const c = toNode(child, nsScope);
    if (c) node.children.push(c);
  }
  node.text = texts.join(' ').trim();
  return node;
}

function children(n: XNode, name: string): XNode[] {
  return n.children.filter((c) => c.name === name);
}
function child(n: XNode, name: string): XNode | undefined {
  return n.children.find((c) => c.name === name);
}
function attr(n: XNode, ...names: string[]): string | undefined {
  for (const a of names) {
    const v = n.attrs[a];
    if (v !== undefined) return v.trim();
  }
  return undefined;
}
function textOf(n: XNode | undefined): string | undefined {
  if (n === undefined) return undefined;
  return n.text === '' ? undefined : n.text;
}
/** Stream ids in a `<send>`/`<recv>`: text (RFC 7865) or `<id>` children (BroadWorks). */
function streamRefs(n: XNode): string[] {
  if (n.text !== '') return [n.text];
  return children(n, 'id').map((c) => c.text).filter((t) => t !== '');
}
function pushUnique(list: string[], values: readonly string[]): void {
  for (const v of values) if (!list.includes(v)) list.push(v);
}

const STRUCTURAL = new Set([
  'datamode', 'group', 'session', 'participant', 'stream', 'recording', 'sessionrecordingassoc',
  'participantsessionassoc', 'participantstreamassoc', 'extensiondata',
]);

/** The number in a vendor's calling/called number or a participant's AOR; undefined for names. */
function numberOf(aor: string | undefined): string | undefined {
  if (aor === undefined) return undefined;
  const user = userOfAor(aor);
  return user !== undefined && /^\+?\d{3,}$/.test(user) ? user : undefined;
}

/** The participant whose AOR is `number` (in any spelling sameNumber accepts). */
function participantWithNumber(list: readonly RsParticipant[], number: string | undefined): RsParticipant | undefined {
  if (number === undefined) return undefined;
  return list.find((p) => {
    const own = numberOf(p.aor);
    return own !== undefined && sameNumber(own, number);
  });
}

interface VendorFacts {
  extensions: Record<string, string>;
  callDirection?: 'inbound' | 'outbound';
  /** In memory only: used to mark which participant called, then dropped. */
  callingNumber?: string;
  calledNumber?: string;
}

const BROADWORKS_KEYS: Readonly<Record<string, string>> = {
  exttrackingid: 'broadworks.extTrackingId',
  callid: 'broadworks.callId',
  serviceproviderid: 'broadworks.serviceProviderId',
  groupid: 'broadworks.groupId',
  recordingtype: 'broadworks.recordingType',
};

function readBroadWorks(n: XNode, facts: VendorFacts): void {
  for (const c of n.children) {
    const key = BROADWORKS_KEYS[c.name];
    if (key !== undefined && c.text !== '') facts.extensions[key] = c.text;
    if (c.name === 'calltype') {
      const kind = c.children[0];
      if (kind === undefined) continue;
      facts.extensions['broadworks.callType'] = kind.localName;
      if (kind.name.startsWith('term')) facts.callDirection = 'inbound';
      else if (kind.name.startsWith('orig')) facts.callDirection = 'outbound';
      facts.callingNumber = textOf(child(kind, 'callingpartynumber')) ?? facts.callingNumber;
      facts.calledNumber = textOf(child(kind, 'calledpartynumber')) ?? facts.calledNumber;
    }
  }
}

function readMetaswitch(n: XNode, facts: VendorFacts): void {
  const callType = textOf(child(n, 'calltype'));
  if (callType !== undefined) {
    facts.extensions['metaswitch.callType'] = callType;
    if (/^orig/i.test(callType)) facts.callDirection = 'outbound';
    else if (/^term/i.test(callType)) facts.callDirection = 'inbound';
  }
  const system = textOf(child(n, 'systemname'));
  if (system !== undefined) facts.extensions['metaswitch.systemName'] = system;
  facts.callingNumber = textOf(child(n, 'callingpartynumber')) ?? facts.callingNumber;
}

/** Reads one `<extensiondata>` (or a foreign extension element); returns Acme's callingParty if present. */
function readExtension(ext: XNode, facts: VendorFacts): boolean | undefined {
  let callingParty: boolean | undefined;
  const visit = (n: XNode, depth: number): void => {
    if (depth > 4) return;
    for (const c of n.children) {
      if (c.name === 'broadworksrecordingmetadata') readBroadWorks(c, facts);
      else if (c.name === 'metaswitchrecordingmetadata') readMetaswitch(c, facts);
      else if (c.ns === NS_ACME || c.name === 'callingparty' || c.name === 'ucid') {
        if (c.name === 'callingparty' && /^(true|false)$/i.test(c.text)) callingParty = c.text.toLowerCase() === 'true';
        else if (c.name === 'ucid' && c.text !== '') facts.extensions['oracle.ucid'] = c.text;
        else if (c.name === 'realm' && c.text !== '') facts.extensions['oracle.realm'] = c.text;
      } else if ((c.name === 'guid' || c.name === 'callguid' || c.name === 'gci') && /^[0-9a-f-]{16,64}$/i.test(c.text)) {
        facts.extensions['cisco.guid'] = c.text.replace(/-/g, '').toLowerCase();
      } else {
        visit(c, depth + 1);
      }
    }
  };
  visit(ext, 0);
  return callingParty;
}

/**
 * Parses one rs-metadata document. Throws ProtocolError('TALLENNE_METADATA_MALFORMED', 400)
 * when it is not well-formed, not recording metadata, or unsafe.
 */
export function parseRecordingMetadata(xml: string): RecordingMetadata {
  if (Buffer.byteLength(xml, 'utf8') > METADATA_LIMITS.maxBytes) throw malformed('metadata is too large');
  const text = xml.replace(/^\uFEFF/, '');
  preflight(text);
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw malformed(`metadata is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);

  let rawTree: RawNode[];
  try {
    rawTree = parser.parse(text) as RawNode[];
  } catch (e) {
    throw malformed(`metadata is not well-formed XML: ${(e as Error).message}`);
  }
  const roots = rawTree.map((r) => toNode(r, new Map())).filter((r): r is XNode => r !== null);
  if (roots.length !== 1) throw malformed('metadata must have exactly one root element');
  const root = roots[0]!;

  let dialect: RecordingMetadata['dialect'];
  if (root.name === 'recording_metadata') {
    if (root.ns !== NS_SIPREC && root.ns !== '') throw malformed(`unknown metadata namespace "${root.ns.slice(0, 80)}"`);
    dialect = 'broadworks';
  } else if (root.name === 'recording') {
    if (root.ns === NS_RFC7865) dialect = 'rfc7865';
    else if (root.ns === NS_DRAFT || root.ns === '') dialect = 'draft';
    else throw malformed(`unknown metadata namespace "${root.ns.slice(0, 80)}"`);
  } else {
    throw malformed(`root element <${root.name.slice(0, 40)}> is not recording metadata`);
  }
  // A root that holds bare text (the tags were lost, as in a damaged BroadWorks capture)
  // or nothing we know is not metadata we can trust.
  if (root.text !== '') throw malformed('metadata root holds text instead of elements');
  if (!root.children.some((c) => STRUCTURAL.has(c.name))) throw malformed('metadata has no recording elements');

  const modeText = textOf(child(root, 'datamode'))?.toLowerCase();
  if (modeText !== undefined && modeText !== 'complete' && modeText !== 'partial') {
    throw malformed(`unknown dataMode "${modeText.slice(0, 20)}"`);
  }
  const dataMode = modeText ?? 'complete';

  const facts: VendorFacts = { extensions: {} };
  const sipSessionIds: string[] = [];
  let sessionId: string | undefined;
  let groupId: string | undefined;

  for (const g of children(root, 'group')) {
    groupId ??= attr(g, 'group_id', 'id') || undefined;
  }
  for (const s of children(root, 'session')) {
    sessionId ??= attr(s, 'session_id', 'id') || undefined;
    groupId ??= textOf(child(s, 'group-ref')) ?? (attr(s, 'group_id', 'group') || undefined);
    pushUnique(sipSessionIds, children(s, 'sipsessionid').map((c) => c.text).filter((t) => t !== ''));
    for (const e of children(s, 'extensiondata')) readExtension(e, facts);
  }

  const participants = new Map<string, RsParticipant>();
  const participantOf = (id: string): RsParticipant => {
    let p = participants.get(id);
    if (p === undefined) {
      if (participants.size >= METADATA_LIMITS.maxParticipants) throw malformed('metadata has too many participants');
      p = { id, sends: [], receives: [] };
      participants.set(id, p);
    }
    return p;
  };

  for (const el of children(root, 'participant')) {
    const id = attr(el, 'participant_id', 'id');
    if (!id) throw malformed('participant without an id');
    const p = participantOf(id);
    const nameId = child(el, 'nameid');
    const aor = (nameId && attr(nameId, 'aor')) || textOf(child(el, 'aor')) || (nameId && textOf(child(nameId, 'aor')));
    if (aor) p.aor = aor;
    const name = textOf(nameId && child(nameId, 'name')) ?? textOf(child(el, 'name'));
    if (name !== undefined) p.name = name;
    // Draft style (Acme, BroadWorks): <send>/<recv> and the times sit inside <participant>.
    const sends = children(el, 'send').flatMap(streamRefs);
    const recvs = children(el, 'recv').flatMap(streamRefs);
    if (sends.length > 0 || recvs.length > 0) {
      pushUnique(p.sends, sends);
      pushUnique(p.receives, recvs);
      p.streamsDeclared = true;
    }
    const at = textOf(child(el, 'associate-time'));
    if (at !== undefined) p.associatedAt = at;
    const gone = textOf(child(el, 'disassociate-time'));
    if (gone !== undefined) p.disassociatedAt = gone;
    for (const e of children(el, 'extensiondata')) {
      const calling = readExtension(e, facts);
      if (calling !== undefined) p.callingParty = calling;
    }
  }
  for (const el of children(root, 'participantstreamassoc')) {
    const id = attr(el, 'participant_id', 'id');
    if (!id) throw malformed('participantstreamassoc without a participant_id');
    const p = participantOf(id);
    pushUnique(p.sends, children(el, 'send').flatMap(streamRefs));
    pushUnique(p.receives, children(el, 'recv').flatMap(streamRefs));
    p.streamsDeclared = true;
  }
  for (const el of children(root, 'participantsessionassoc')) {
    const id = attr(el, 'participant_id', 'id');
    if (!id) throw malformed('participantsessionassoc without a participant_id');
    const p = participantOf(id);
    const at = textOf(child(el, 'associate-time'));
    if (at !== undefined) p.associatedAt = at;
    const gone = textOf(child(el, 'disassociate-time'));
    if (gone !== undefined) p.disassociatedAt = gone;
  }

  const streams: RsStream[] = [];
  for (const el of children(root, 'stream')) {
    if (streams.length >= METADATA_LIMITS.maxStreams) throw malformed('metadata has too many streams');
    // Avaya SBCE declares the far-end stream with stream_id="": kept, as nobody can send it.
    const s: RsStream = { id: attr(el, 'stream_id', 'id') ?? '' };
    const label = textOf(child(el, 'label'));
    if (label !== undefined) s.label = label;
    const sess = attr(el, 'session_id', 'session');
    if (sess) s.sessionId = sess;
    const mode = textOf(child(el, 'mode'))?.toLowerCase();
    if (mode !== undefined) s.mode = mode;
    streams.push(s);
  }

  for (const e of children(root, 'extensiondata')) readExtension(e, facts);

  const list = [...participants.values()];
  markCaller(list, facts);

  const md: RecordingMetadata = { dataMode, dialect, sipSessionIds, participants: list, streams, extensions: facts.extensions };
  if (sessionId !== undefined) md.sessionId = sessionId;
  if (groupId !== undefined) md.groupId = groupId;
  if (facts.callDirection !== undefined) md.callDirection = facts.callDirection;
  return md;
}

/** Marks the calling participant from a vendor's calling/called number, when one matches. */
function markCaller(list: RsParticipant[], facts: VendorFacts): void {
  if (list.some((p) => p.callingParty === true)) return;
  const caller = participantWithNumber(list, numberOf(facts.callingNumber));
  if (caller !== undefined) {
    caller.callingParty = true;
    return;
  }
  const callee = participantWithNumber(list, numberOf(facts.calledNumber));
  if (callee !== undefined && list.length === 2) {
    const other = list.find((p) => p !== callee)!;
    other.callingParty = true;
  }
}

/**
 * Applies an update to the current metadata. A complete update is a snapshot: it replaces
 * the participants and streams, so a party it leaves out has left. What identifies the call
 * rather than its parties is kept when the snapshot does not restate it: the session and
 * group ids, the vendor's direction and extension ids, and which known party placed the call.
 * A partial update merges participants and streams by id.
 */
export function mergeMetadata(prev: RecordingMetadata, update: RecordingMetadata): RecordingMetadata {
  if (update.dataMode === 'complete') {
    const participants = update.participants.map((u) => {
      const callingParty = u.callingParty ?? prev.participants.find((p) => p.id === u.id)?.callingParty;
      return callingParty === undefined ? { ...u } : { ...u, callingParty };
    });
    return keepCallIds({ ...update, participants, extensions: { ...prev.extensions, ...update.extensions } }, prev, update);
  }
  const participants = prev.participants.map((p) => ({ ...p, sends: [...p.sends], receives: [...p.receives] }));
  for (const u of update.participants) {
    const i = participants.findIndex((p) => p.id === u.id);
    if (i < 0) {
      participants.push({ ...u, sends: [...u.sends], receives: [...u.receives] });
      continue;
    }
    const p = participants[i]!;
    const merged: RsParticipant = { ...p };
    if (u.aor !== undefined) merged.aor = u.aor;
    if (u.name !== undefined) merged.name = u.name;
    if (u.streamsDeclared) {
      // The update restates this participant's streams: a missing <send> means it stopped sending.
      merged.sends = [...u.sends];
      merged.receives = [...u.receives];
      merged.streamsDeclared = true;
    }
    if (u.associatedAt !== undefined) merged.associatedAt = u.associatedAt;
    if (u.disassociatedAt !== undefined) merged.disassociatedAt = u.disassociatedAt;
    if (u.callingParty !== undefined) merged.callingParty = u.callingParty;
    participants[i] = merged;
  }
  const streams = prev.streams.map((s) => ({ ...s }));
  for (const u of update.streams) {
    const i = streams.findIndex((s) => s.id === u.id);
    if (i < 0) streams.push({ ...u });
    else streams[i] = { ...streams[i]!, ...u };
  }
  const sipSessionIds = [...prev.sipSessionIds];
  pushUnique(sipSessionIds, update.sipSessionIds);
  const out: RecordingMetadata = {
    dataMode: prev.dataMode,
    dialect: prev.dialect,
    sipSessionIds,
    participants,
    streams,
    extensions: { ...prev.extensions, ...update.extensions },
  };
  return keepCallIds(out, prev, update);
}

/** The session and group ids and the vendor's direction: the update's, else the earlier ones. */
function keepCallIds(out: RecordingMetadata, prev: RecordingMetadata, update: RecordingMetadata): RecordingMetadata {
  const sessionId = update.sessionId ?? prev.sessionId;
  if (sessionId !== undefined) out.sessionId = sessionId;
  const groupId = update.groupId ?? prev.groupId;
  if (groupId !== undefined) out.groupId = groupId;
  const dir = update.callDirection ?? prev.callDirection;
  if (dir !== undefined) out.callDirection = dir;
  return out;
}

/** Labels of the streams a participant sends (streams without a label are skipped). */
export function labelsSentBy(md: RecordingMetadata, participantId: string): string[] {
  const p = md.participants.find((x) => x.id === participantId);
  if (p === undefined) return [];
  const out: string[] = [];
  for (const id of p.sends) {
    const s = md.streams.find((x) => x.id === id && id !== '');
    if (s?.label !== undefined && !out.includes(s.label)) out.push(s.label);
  }
  return out;
}
