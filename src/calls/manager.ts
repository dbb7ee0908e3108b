/**
 * The call manager: answers what the SIP user agent is offered, owns every live
 * CallSession, and carries each ended call through spool → encoder → index. It is the
 * SipCallHandler; the daemon composes it with the user agent, the port allocator, the
 * encoder pool and the index.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { ulid } from 'ulid';
import type { Config } from '../config/schema.js';
import { scrubDigits, type Logger } from '../log.js';
import { TallenneError, ProtocolError } from '../errors.js';
import type { CallAnswer, DialogEndReason, IncomingRequest, SipCallHandler } from '../sip/user-agent.js';
import { parseInviteBody, type InviteBody } from '../sip/body.js';
import { buildSdpAnswer, chooseFormats, isPausedMedia, type MediaAnswer, type SdpMedia, type SdpOffer } from '../sip/sdp.js';
import { mergeMetadata } from '../sip/metadata.js';
import { uriUser } from '../sip/message.js';
import { assignRoles, type RoleAssignment } from './roles.js';
import { CallSession, type SessionLeg } from './session.js';
import { PortAllocator, type PortPair } from '../rtp/ports.js';
import { RtpLegReceiver } from '../rtp/receiver.js';
import type { RtpCounters } from '../rtp/counters.js';
import { SpoolWriter } from '../spool/writer.js';
import type { EncoderPool } from '../encoder/pool.js';
import type { EncodeResult } from '../encoder/encode-spool.js';
import type { RecordingIndex } from '../index/index.js';
import { withRetention } from '../retention/policy.js';
import { protectNumber, type NumberHasher } from '../privacy/numbers.js';
import type { AudioStore } from '../storage/audio-store.js';
import type { CodecName, LegDescriptor, RecordingEntry, RecordingMeta, StoredParticipant } from '../types.js';

/** Codecs the encoder decodes; offered in this order of preference when several are. */
export const RECORDABLE_CODECS: readonly CodecName[] = ['PCMU', 'PCMA', 'G722', 'L16', 'OPUS'];

/** Events for observers (metrics, tests); never emitted per packet. */
export interface ManagerEvents {
  answered: [session: CallSession];
  ended: [session: CallSession];
  rejected: [status: number, why: string];
  recorded: [entry: RecordingEntry, result: EncodeResult];
  failed: [id: string, err: Error];
}

export interface ManagerDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly ports: PortAllocator;
  readonly rtpCounters: RtpCounters;
  readonly encoder: EncoderPool;
  readonly index: RecordingIndex;
  readonly store: AudioStore;
  readonly hasher: NumberHasher;
}

/** Streams one call may record: the spool names a leg in one byte, and SDP_LIMITS caps m-lines at 16. */
const MAX_LEGS = 16;
const FLUSH_INTERVAL_MS = 200;
const WATCH_INTERVAL_MS = 1000;
const FREE_SPACE_CACHE_MS = 2000;
/** A failed finalisation is tried again after 30 s, 60 s, ... at most every 10 min. */
const RETRY_BASE_MS = 30_000;
const RETRY_MAX_MS = 600_000;

export class CallManager extends EventEmitter<ManagerEvents> implements SipCallHandler {
  private readonly sessions = new Map<string, CallSession>();
  private readonly finalising = new Set<Promise<void>>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly spoolDir: string;
  private readonly flushTimer: NodeJS.Timeout;
  private readonly watchTimer: NodeJS.Timeout;
  private freeSpace = { at: 0, bytes: Number.POSITIVE_INFINITY };
  private accepting = true;
  config: Config;

  constructor(private readonly deps: ManagerDeps) {
    super();
    this.config = deps.config;
    this.spoolDir = join(deps.config.storage.dir, 'spool');
    mkdirSync(this.spoolDir, { recursive: true, mode: 0o750 });
    this.flushTimer = setInterval(() => this.flushSpools(), FLUSH_INTERVAL_MS);
    this.watchTimer = setInterval(() => this.watchInactivity(), WATCH_INTERVAL_MS);
    this.flushTimer.unref();
    this.watchTimer.unref();
  }

  /**
   * Ends a dialog from our side with a BYE. The daemon sets it once the user agent exists
   * (the UA needs the manager first); without it a call is ended locally only.
   */
  hangUp: ((dialogId: string) => void) | null = null;

  get activeCalls(): number {
    return this.sessions.size;
  }

  get pendingFinalisations(): number {
    return this.finalising.size;
  }

  liveSessions(): IterableIterator<CallSession> {
    return this.sessions.values();
  }

  // ---- SIP side ---------------------------------------------------------------------

  async invite(req: IncomingRequest): Promise<CallAnswer> {
    const reject = (status: number, why: string, warning: string, retryAfter?: number): CallAnswer => {
      this.deps.log.warn({ status, why, detail: scrubDigits(warning) }, 'INVITE rejected');
      this.emit('rejected', status, why);
      return { status, warning, ...(retryAfter ? { retryAfterSeconds: retryAfter } : {}) };
    };
    if (!this.accepting) return reject(503, 'shutting_down', 'shutting down', 30);
    if (this.sessions.size >= this.config.calls.max_concurrent) {
      return reject(503, 'capacity', `at capacity (${this.config.calls.max_concurrent} calls)`, 5);
    }
    const free = this.freeBytes();
    if (free < this.config.storage.min_free) {
      return reject(503, 'disk_low', `free space ${free} bytes is below the floor of ${this.config.storage.min_free}`, 60);
    }
    let body: InviteBody;
    try {
      if (req.body.length === 0) return reject(488, 'no_offer', 'an SDP offer is required in the INVITE');
      body = parseInviteBody(req.contentType, req.body);
    } catch (e) {
      if (e instanceof ProtocolError) return reject(e.status, 'malformed', e.message);
      throw e;
    }
    const legPlan = this.planLegs(body.sdp);
    if (legPlan.length === 0) return reject(488, 'no_codec', 'no offered audio stream has a codec this recorder can decode');

    const roles = assignRoles(
      {
        ...(body.metadata ? { metadata: body.metadata } : {}),
        from: partyOf(req.from),
        to: partyOf(req.to),
        ...(uriUser(req.requestUri) ? { requestUser: uriUser(req.requestUri)! } : {}),
        media: body.sdp.media,
      },
      this.roleRules(),
    );

    const id = ulid();
    const log = this.deps.log.child({ recording: id });
    const pairs: PortPair[] = [];
    try {
      for (let i = 0; i < legPlan.length; i++) pairs.push(await this.deps.ports.allocatePair());
    } catch (e) {
      for (const p of pairs) this.deps.ports.release(p);
      if (e instanceof TallenneError && e.code === 'TALLENNE_NO_PORTS') return reject(503, 'no_ports', 'RTP port range exhausted', 5);
      throw e;
    }

    const spoolPath = join(this.spoolDir, `${id}.spool`);
    let spool: SpoolWriter;
    try {
      spool = new SpoolWriter(spoolPath);
    } catch (e) {
      for (const p of pairs) this.deps.ports.release(p);
      return reject(503, 'spool_unwritable', `cannot create a spool file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, 60);
    }
    const answeredAt = Date.now();
    const meta = this.buildMeta({ id, req, roles, legPlan, answeredAt, siprec: req.isSiprec || body.metadata !== undefined, body });
    const session = new CallSession({ id, dialogId: req.dialogId, spool, meta, ...(body.metadata ? { metadata: body.metadata } : {}), log });
    spool.onError = (err) => this.onSpoolError(session, err);
    spool.appendMeta(answeredAt, meta);
    legPlan.forEach((plan, i) => {
      const pair = pairs[i]!;
      const leg = meta.legs[i]!;
      // Spool records name the leg by its m-line index, as LegDescriptor.index does: with
      // video or refused m-lines between audio ones the two differ from the plan position.
      const receiver = new RtpLegReceiver({ legIndex: leg.index, pair, spool, formats: leg.formats, counters: this.deps.rtpCounters, log });
      session.legs.push({ index: plan.media.index, pair, receiver });
    });
    this.sessions.set(req.dialogId, session);
    session.transition('answered');
    const allPaused = legPlan.every((p) => isPausedMedia(p.media));
    if (allPaused) session.setPaused(true, answeredAt);
    const sdp = this.answerSdp(session, body.sdp);
    log.info({ siprec: meta.siprec, legs: meta.legs.length, codecs: meta.legs.map((l) => l.formats[0]?.codec), direction: meta.direction, transport: req.transport }, 'call answered');
    this.emit('answered', session);
    return { status: 200, sdp };
  }

  confirmed(dialogId: string): void {
    const s = this.sessions.get(dialogId);
    if (s && s.state === 'answered') s.confirm();
  }

  async update(req: IncomingRequest): Promise<CallAnswer> {
    const session = this.sessions.get(req.dialogId);
    if (!session) return { status: 481 };
    session.confirm();
    if (req.body.length === 0) {
      // A session refresh without an offer: answer with the SDP we already agreed.
      return req.method === 'UPDATE' ? { status: 200 } : { status: 200, sdp: session.lastOffer ? this.answerSdp(session, session.lastOffer) : '' };
    }
    let body: InviteBody;
    try {
      body = parseInviteBody(req.contentType, req.body);
    } catch (e) {
      if (e instanceof ProtocolError) return { status: e.status, warning: e.message };
      throw e;
    }
    const now = Date.now();
    if (body.metadata) {
      session.metadata = session.metadata && body.metadata.dataMode === 'partial' ? mergeMetadata(session.metadata, body.metadata) : body.metadata;
    }
    // Formats may change (codec switch); ports stay, so audio continues without a gap.
    const legs = session.meta.legs.map((leg) => {
      const media = body.sdp.media[leg.index];
      if (!media) return leg;
      const formats = chooseFormats(media, RECORDABLE_CODECS);
      return formats ? { ...leg, formats } : leg;
    });
    legs.forEach((leg, i) => session.legs[i]?.receiver.setFormats(leg.formats));
    const roles = session.metadata
      ? assignRoles(
        { metadata: session.metadata, from: partyOf(req.from), to: partyOf(req.to), media: body.sdp.media },
        this.roleRules(),
      )
      : null;
    const added = await this.addLegs(session, body.sdp, roles, legs);
    // The call ended while ports were being found for its new streams (endSession released them).
    if (!session.live) return { status: 481 };
    session.meta = { ...session.meta, legs, ...(roles ? this.participantsFrom(roles, session.meta.answeredAt, now, session.meta.participants) : {}) };
    session.spool.appendMeta(now, session.meta);
    const recorded = session.meta.legs.map((l) => body.sdp.media[l.index]).filter((m): m is SdpMedia => m !== undefined);
    const paused = recorded.length > 0 && recorded.every((m) => isPausedMedia(m));
    session.setPaused(paused, now);
    for (const l of added) l.receiver.setPaused(session.paused);
    session.sdpVersion++;
    session.log.info({ paused, method: req.method, metadata: body.metadata?.dataMode ?? 'none', legsAdded: added.length }, 'call updated');
    return { status: 200, sdp: this.answerSdp(session, body.sdp) };
  }

  /**
   * Audio m-lines that a re-offer adds (a participant's own stream when a conference grows)
   * get ports and a receiver of their own; `legs` gets their descriptors. m-lines the offer
   * already had keep theirs. A full port range leaves the new stream refused (port 0), the
   * call goes on.
   */
  private async addLegs(session: CallSession, offer: SdpOffer, roles: RoleAssignment | null, legs: LegDescriptor[]): Promise<SessionLeg[]> {
    const added: SessionLeg[] = [];
    for (const media of offer.media) {
      if (legs.some((l) => l.index === media.index)) continue;
      if (media.type !== 'audio' || media.port === 0 || legs.length >= MAX_LEGS) continue;
      const formats = chooseFormats(media, RECORDABLE_CODECS);
      if (!formats) continue;
      let pair: PortPair;
      try {
        pair = await this.deps.ports.allocatePair();
      } catch (e) {
        if (e instanceof TallenneError && e.code === 'TALLENNE_NO_PORTS') {
          session.log.warn({ mline: media.index }, 'no RTP ports for a stream added mid-call; it is not recorded');
          continue;
        }
        throw e;
      }
      if (!session.live) {
        this.deps.ports.release(pair);
        break;
      }
      const assigned = roles?.legs.find((l) => l.index === media.index);
      const leg: LegDescriptor = {
        index: media.index,
        ...(media.label ? { label: media.label } : {}),
        role: assigned?.role ?? 'other',
        channel: assigned?.channel ?? 1,
        formats,
      };
      const receiver = new RtpLegReceiver({ legIndex: leg.index, pair, spool: session.spool, formats, counters: this.deps.rtpCounters, log: session.log });
      const sl: SessionLeg = { index: leg.index, pair, receiver };
      legs.push(leg);
      added.push(sl);
      session.legs.push(sl);
    }
    return added;
  }

  ended(dialogId: string, reason: DialogEndReason): void {
    const session = this.sessions.get(dialogId);
    if (!session) return;
    this.endSession(session, session.endReason ?? reason);
  }

  private roleRules() {
    return {
      serviceNumbers: this.config.roles.service_numbers,
      internalPattern: this.config.roles.internal_pattern,
      agents: this.config.agents,
      defaultCountry: this.config.privacy.default_country,
    };
  }

  // ---- building the answer ----------------------------------------------------------

  private planLegs(offer: SdpOffer): Array<{ media: SdpMedia; formats: NonNullable<ReturnType<typeof chooseFormats>> }> {
    const plan = [];
    for (const media of offer.media) {
      if (media.type !== 'audio' || media.port === 0) continue;
      const formats = chooseFormats(media, RECORDABLE_CODECS);
      if (formats) plan.push({ media, formats });
    }
    return plan;
  }

  private answerSdp(session: CallSession, offer: SdpOffer): string {
    session.lastOffer = offer;
    const media: MediaAnswer[] = offer.media.map((m) => {
      const legIdx = session.meta.legs.findIndex((l) => l.index === m.index);
      const leg = session.meta.legs[legIdx];
      const sl = session.legs[legIdx];
      if (!leg || !sl) return { index: m.index, port: 0, formats: [], direction: 'inactive', rtcpMux: false, ...(m.label ? { label: m.label } : {}) };
      return {
        index: m.index,
        port: sl.pair.port,
        formats: leg.formats as MediaAnswer['formats'],
        direction: isPausedMedia(m) ? 'inactive' : 'recvonly',
        rtcpMux: m.rtcpMux,
        ...(m.label ? { label: m.label } : {}),
      };
    });
    return buildSdpAnswer({ offer, address: this.config.rtp.advertise_address ?? this.config.rtp.address, sessionId: String(session.meta.answeredAt), version: session.sdpVersion, media, userAgent: this.config.sip.user_agent });
  }

  private buildMeta(a: { id: string; req: IncomingRequest; roles: RoleAssignment; legPlan: ReturnType<CallManager['planLegs']>; answeredAt: number; siprec: boolean; body: InviteBody }): RecordingMeta {
    const { roles } = a;
    const legs: LegDescriptor[] = a.legPlan.map((p, i) => {
      const assigned = roles.legs.find((l) => l.index === p.media.index);
      return {
        index: p.media.index,
        ...(p.media.label ? { label: p.media.label } : {}),
        role: assigned?.role ?? 'other',
        channel: assigned?.channel ?? (i === 0 ? 0 : 1),
        formats: p.formats,
      };
    });
    const customer = roles.customer?.user ? protectNumber(roles.customer.user, this.config.privacy, this.deps.hasher) : undefined;
    const md = a.body.metadata;
    return {
      id: a.id,
      callId: a.req.callId,
      ...(md?.sessionId ? { siprecSessionId: md.sessionId } : {}),
      ...(md?.groupId ? { groupId: md.groupId } : {}),
      siprec: a.siprec,
      answeredAt: a.answeredAt,
      direction: roles.direction,
      ...(customer ? { customerNumber: customer.masked } : {}),
      ...(customer?.hash ? { customerNumberHash: customer.hash } : {}),
      ...(roles.serviceNumber ? { serviceNumber: roles.serviceNumber } : {}),
      ...(roles.agent?.agentId ? { agentId: roles.agent.agentId } : {}),
      ...(roles.agent?.agentName ? { agentName: roles.agent.agentName } : {}),
      ...(roles.agent?.team ? { team: roles.agent.team } : {}),
      ...this.participantsFrom(roles, a.answeredAt, a.answeredAt, []),
      legs,
      ...(md && Object.keys(md.extensions).length > 0 ? { extensions: md.extensions } : {}),
    };
  }

  /**
   * Stored participants: numbers masked unless the organisation's, agents by directory id,
   * times of joining and leaving. The list keeps the order in which parties first appeared;
   * one that is no longer in the metadata (or is disassociated) gets its leaving time.
   */
  private participantsFrom(roles: RoleAssignment, answeredAt: number, now: number, previous: readonly StoredParticipant[]): { participants: StoredParticipant[] } {
    const sinceAnswer = Math.max(0, now - answeredAt);
    const current = new Map(roles.participants.map((p) => {
      const before = previous.find((x) => x.id === p.id);
      // Only the organisation's own numbers (extensions, service numbers) are kept in clear;
      // any other party's is masked, whatever role the call gave it.
      const number = p.user === undefined ? undefined
        : p.organisation ? p.user
        : protectNumber(p.user, this.config.privacy, this.deps.hasher).masked;
      const stored: StoredParticipant = {
        id: p.id,
        role: p.role,
        ...(number ? { number } : {}),
        ...(p.agentId ? { agentId: p.agentId } : {}),
        ...(p.agentName ? { agentName: p.agentName } : {}),
        // Every stream the participant sent at some point of the recording: a hold or a
        // partial update that drops a <send> does not make earlier audio anyone else's.
        sends: [...new Set([...(before?.sends ?? []), ...p.sendsLabels])],
        joinedMs: before?.joinedMs ?? sinceAnswer,
      };
      return [p.id, stored] as const;
    }));
    const participants: StoredParticipant[] = previous.map((old) => current.get(old.id) ?? { ...old, leftMs: old.leftMs ?? sinceAnswer });
    for (const [id, p] of current) if (!previous.some((x) => x.id === id)) participants.push(p);
    return { participants };
  }

  // ---- ending and finalising --------------------------------------------------------

  private endSession(session: CallSession, reason: string): void {
    if (!session.live) return;
    session.transition('ended');
    this.sessions.delete(session.dialogId);
    const endedAt = Date.now();
    for (const l of session.legs) {
      l.receiver.close();
      this.deps.ports.release(l.pair);
    }
    session.log.info({ reason, durationMs: endedAt - session.meta.answeredAt }, 'call ended');
    this.emit('ended', session);
    const p = session.spool
      .close({ endedAt, reason })
      .then(() => this.finalise(session.spool.path, session.id))
      .finally(() => this.finalising.delete(p));
    this.finalising.add(p);
  }

  private onSpoolError(session: CallSession, err: Error): void {
    session.truncated = true;
    session.log.error({ code: (err as NodeJS.ErrnoException).code, err: err.message }, 'spool write failed; the recording keeps what was written and is marked truncated');
  }

  /**
   * Spool → encoder → index → delete spool. The spool is deleted only once the audio file
   * and its index entry are durable; on failure it stays for the next start.
   */
  private async finalise(spoolPath: string, id: string, attempt = 0): Promise<void> {
    const log = this.deps.log.child({ recording: id });
    try {
      const result = await this.deps.encoder.encode({
        spoolPath,
        storageDir: this.config.storage.dir,
        id,
        complexity: this.config.encoder.complexity,
        bitrate: this.config.encoder.bitrate,
        skipSilence: this.config.encoder.skip_silence,
        maskDtmf: this.config.privacy.mask_dtmf,
      });
      const entry = withRetention(entryFrom(result), this.config.retention, { defaultCountry: this.config.privacy.default_country });
      await this.deps.index.put(entry);
      await unlink(spoolPath);
      log.info({ status: entry.status, durationMs: entry.durationMs, bytes: entry.fileBytes, file: entry.file }, 'recording stored');
      this.emit('recorded', entry, result);
    } catch (e) {
      // Counted once per recording; the spool stays and later attempts may still store it.
      if (attempt === 0) this.emit('failed', id, e as Error);
      const retryInMs = this.scheduleRetry(spoolPath, id, attempt);
      log.error({ err: e, attempt, retryInMs }, retryInMs === null
        ? 'finalising the recording failed; the spool is kept and finalised at the next start'
        : 'finalising the recording failed; the spool is kept and tried again');
    }
  }

  /**
   * Tries a failed finalisation again later (a full disk freed, a worker replaced), backing
   * off to RETRY_MAX_MS. Not while stopping: the next start recovers the spool instead.
   */
  private scheduleRetry(spoolPath: string, id: string, attempt: number): number | null {
    if (!this.accepting || this.retries.has(id)) return null;
    const delay = Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_MAX_MS);
    const timer = setTimeout(() => {
      this.retries.delete(id);
      const p = this.finalise(spoolPath, id, attempt + 1).finally(() => this.finalising.delete(p));
      this.finalising.add(p);
    }, delay);
    timer.unref();
    this.retries.set(id, timer);
    return delay;
  }

  /** At start-up: every spool left behind (crash, kill, failed encode) becomes a recording. */
  async recoverSpools(): Promise<number> {
    let n = 0;
    for (const name of readdirSync(this.spoolDir)) {
      if (!name.endsWith('.spool')) continue;
      const id = name.slice(0, -'.spool'.length);
      this.deps.log.warn({ recording: id }, 'recovering a spool left by an earlier run');
      const p = this.finalise(join(this.spoolDir, name), id).finally(() => this.finalising.delete(p));
      this.finalising.add(p);
      n++;
    }
    return n;
  }

  private flushSpools(): void {
    for (const s of this.sessions.values()) s.spool.flush();
  }

  private watchInactivity(): void {
    const limit = this.config.rtp.inactivity_timeout.ms;
    const now = Date.now();
    for (const s of this.sessions.values()) {
      if (s.paused || s.state === 'offered') continue;
      if (now - s.lastActivity() > limit) {
        s.endReason = 'rtp-timeout';
        s.log.warn({ silentMs: now - s.lastActivity() }, 'no RTP within the inactivity timeout; ending the call');
        if (this.hangUp) this.hangUp(s.dialogId);
        else this.endSession(s, 'rtp-timeout');
      }
    }
  }

  private freeBytes(): number {
    const now = Date.now();
    if (now - this.freeSpace.at > FREE_SPACE_CACHE_MS) {
      try {
        this.freeSpace = { at: now, bytes: this.deps.store.freeBytes() };
      } catch {
        this.freeSpace = { at: now, bytes: 0 };
      }
    }
    return this.freeSpace.bytes;
  }

  /** New INVITEs are refused from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Waits until no call is live, or the deadline passes; then ends what is left. */
  async drain(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (this.sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const s of [...this.sessions.values()]) {
      s.endReason = 'shutdown';
      if (this.hangUp) this.hangUp(s.dialogId);
      else this.endSession(s, 'shutdown');
    }
    await this.settled();
  }

  /** Resolves when every ended call is encoded and indexed (or failed). */
  async settled(): Promise<void> {
    while (this.finalising.size > 0) await Promise.allSettled([...this.finalising]);
  }

  close(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.watchTimer);
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
  }
}

function partyOf(na: { uri: string; displayName?: string }): { uri: string; user?: string; displayName?: string } {
  const user = uriUser(na.uri);
  return { uri: na.uri, ...(user ? { user } : {}), ...(na.displayName ? { displayName: na.displayName } : {}) };
}

/** The index entry of an encoded recording. */
export function entryFrom(r: EncodeResult): RecordingEntry {
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
    file: r.file,
    fileBytes: r.fileBytes,
    sampleRate: r.sampleRate,
    channels: r.channels,
  };
}
