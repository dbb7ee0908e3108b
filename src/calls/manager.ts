/**
 * The call manager answers what the SIP user agent is offered and owns every live
 * CallSession: it admits or refuses an INVITE, decides the roles, opens one Leg per recorded
 * m-line and the call's spool, answers re-offers and metadata updates, watches for calls
 * that went silent, and reports each ended call (`ended`) for the Finaliser to store.
 * It is the SipCallHandler; the daemon composes it with the user agent and the port allocator.
 */
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { ulid } from 'ulid';
import type { Config } from '../config/schema.js';
import { scrubDigits, type Logger } from '../log.js';
import { TallenneError, ProtocolError } from '../errors.js';
import type { CallAnswer, DialogEndReason, IncomingRequest, SipCallHandler } from '../sip/user-agent.js';
import { parseInviteBody, parseSessionBody, type InviteBody, type SessionBody } from '../sip/body.js';
import { buildSdpAnswer, chooseFormats, isPausedMedia, type MediaAnswer, type SdpMedia, type SdpOffer } from '../sip/sdp.js';
import { mergeMetadata } from '../sip/metadata.js';
import { firstHeader, parseCSeq, uriUser } from '../sip/message.js';
import { assignRoles, type RoleAssignment, type RoleRules } from './roles.js';
import { CallSession } from './session.js';
import { Leg, type LegOffer } from './leg.js';
import { offeredKeying } from '../sip/sdes.js';
import { initialDetails, legDescriptor, updatedDetails, type ProtectNumber } from './recording-meta.js';
import { inviteClaimName, type InviteClaims } from './invite-claims.js';
import { REJECTIONS, isRejectionCode, type Rejection, type RejectionCode } from './rejections.js';
import type { PortAllocator, PortPair } from '../rtp/ports.js';
import type { RtpCounters } from '../rtp/counters.js';
import { SpoolWriter } from '../spool/writer.js';
import { newSpoolKey } from '../spool/cipher.js';
import type { KeyWrapper } from '../crypto/keyring.js';
import { protectNumber, type NumberHasher } from '../privacy/numbers.js';
import type { CodecName } from '../types.js';
import type { AudioStore } from '../storage/audio-store.js';

/** Codecs the encoder decodes; offered in this order of preference when several are. */
export const RECORDABLE_CODECS: readonly CodecName[] = ['PCMU', 'PCMA', 'G722', 'L16', 'OPUS'];

/** Events for observers (the finaliser, metrics, tests); never emitted per packet. */
export interface ManagerEvents {
  answered: [session: CallSession];
  /** The call is over; `closed` resolves when its spool is complete on disk. */
  ended: [session: CallSession, closed: Promise<void>];
  /** An INVITE was refused. */
  rejected: [rejection: Rejection];
  /** A re-INVITE or UPDATE inside a call was refused; the call goes on. */
  updateRejected: [rejection: Rejection];
  /** A paused call's peer was asked whether it still has the call (see watchInactivity). */
  probed: [result: ProbeResult];
  /** The last live call ended. */
  idle: [];
}

/** What a probe of a paused call's peer found: it answered, it said it has no such call (481), or it never answered. */
export type ProbeResult = 'answered' | 'gone' | 'unanswered';

export interface ManagerDeps {
  /** The config in force now (capacity, timeouts, roles and the disk floor are reloadable). */
  readonly config: () => Config;
  readonly log: Logger;
  readonly ports: PortAllocator;
  readonly rtpCounters: RtpCounters;
  /** The audio store: its volume's free bytes are checked against storage.min_free. */
  readonly store: Pick<AudioStore, 'usage'>;
  readonly hasher: NumberHasher;
  /** Where spools are written (the Finaliser reads them from there). */
  readonly spoolDir: string;
  /** The key ring when spools are sealed (encryption at rest): each call gets its own data key. */
  readonly spoolKeys?: KeyWrapper;
  /** Ends a dialog from our side with a BYE; the user agent then reports `ended`. */
  readonly hangUp: (dialogId: string) => void;
  /**
   * Asks a dialog's peer whether it still has the call (an in-dialog OPTIONS): resolves with
   * the final status, 408 when none came; undefined when the user agent has no such dialog.
   */
  readonly probe: (dialogId: string) => Promise<number> | undefined;
  /** With a register shared by several recorders: an INVITE copy another one admitted is refused (482). */
  readonly claims?: InviteClaims;
}

/** Streams one call may record: the spool names a leg in one byte, and SDP_LIMITS caps m-lines at 16. */
const MAX_LEGS = 16;
const FLUSH_INTERVAL_MS = 200;
const WATCH_INTERVAL_MS = 1000;
const FREE_SPACE_CACHE_MS = 2000;

/** The refusals planning the legs of an offer can give. */
type PlanRefusal = 'TALLENNE_NO_USABLE_CODEC' | 'TALLENNE_SRTP_REQUIRED' | 'TALLENNE_SRTP_UNSUPPORTED';

/** An m-line the call can record, or why it cannot: a refusal code, or null (not audio, no codec). */
type MediaPlan = LegOffer | Exclude<PlanRefusal, 'TALLENNE_NO_USABLE_CODEC'> | null;

export class CallManager extends EventEmitter<ManagerEvents> implements SipCallHandler {
  private readonly sessions = new Map<string, CallSession>();
  /** The INVITE claim each live call holds in the shared register (with deps.claims). */
  private readonly claimed = new Map<CallSession, string>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly watchTimer: NodeJS.Timeout;
  private freeSpace = { at: 0, bytes: Number.POSITIVE_INFINITY };
  private freeSpaceRefresh: Promise<void> | null = null;
  /** INVITEs past the capacity check and not yet answered or refused. */
  private admitting = 0;
  private accepting = true;

  constructor(private readonly deps: ManagerDeps) {
    super();
    this.flushTimer = setInterval(() => this.flushSpools(), FLUSH_INTERVAL_MS);
    this.watchTimer = setInterval(() => this.watchInactivity(), WATCH_INTERVAL_MS);
    this.flushTimer.unref();
    this.watchTimer.unref();
  }

  private get config(): Config {
    return this.deps.config();
  }

  get activeCalls(): number {
    return this.sessions.size;
  }

  liveSessions(): IterableIterator<CallSession> {
    return this.sessions.values();
  }

  // ---- SIP side ---------------------------------------------------------------------

  /**
   * Why a new call would be refused right now (shutting down, at capacity, disk below its
   * floor), or null when one would be taken. The one rule for both a new INVITE and the
   * answer to OPTIONS, which a load balancer probes.
   */
  private unavailable(): { code: RejectionCode; warning: string } | null {
    const c = this.config;
    if (!this.accepting) return { code: 'TALLENNE_SHUTTING_DOWN', warning: 'shutting down' };
    if (this.sessions.size + this.admitting >= c.calls.max_concurrent) return { code: 'TALLENNE_CAPACITY', warning: `at capacity (${c.calls.max_concurrent} calls)` };
    const free = this.freeBytes();
    if (free < c.storage.min_free) return { code: 'TALLENNE_DISK_LOW', warning: `free space ${free} bytes is below the floor of ${c.storage.min_free}` };
    return null;
  }

  /** The answer to an OPTIONS probe: null (200) while new calls are taken, else the 503 an INVITE would get. */
  availability(): CallAnswer | null {
    const why = this.unavailable();
    if (!why) return null;
    const rule: { status: number; retryAfterSeconds?: number } = REJECTIONS[why.code];
    return { status: rule.status, warning: why.warning, ...(rule.retryAfterSeconds ? { retryAfterSeconds: rule.retryAfterSeconds } : {}) };
  }

  async invite(req: IncomingRequest): Promise<CallAnswer> {
    if (this.freeSpaceStale()) await this.refreshFreeSpace();
    const why = this.unavailable();
    if (why) return this.reject(req, why.code, why.warning);
    // The call holds its place from here: INVITEs handled meanwhile (this one waits for
    // ports and the spool) see it in the capacity count.
    this.admitting++;
    try {
      return await this.admit(req);
    } finally {
      this.admitting--;
    }
  }

  private async admit(req: IncomingRequest): Promise<CallAnswer> {
    const c = this.config;
    if (req.body.length === 0) return this.reject(req, 'TALLENNE_NO_OFFER', 'an SDP offer is required in the INVITE');
    let body: InviteBody;
    try {
      body = parseInviteBody(req.contentType, req.body);
    } catch (e) {
      return this.refuseBody(req, e);
    }
    let plan: LegOffer[];
    try {
      const planned = planLegs(body.sdp, c.rtp.srtp);
      if (typeof planned === 'string') return this.reject(req, planned, REFUSAL_WARNINGS[planned]);
      plan = planned;
    } catch (e) {
      return this.refuseBody(req, e);
    }

    const requestUser = uriUser(req.requestUri);
    const roles = assignRoles(
      {
        ...(body.metadata ? { metadata: body.metadata } : {}),
        from: partyOf(req.from),
        to: partyOf(req.to),
        ...(requestUser ? { requestUser } : {}),
        media: body.sdp.media,
      },
      this.roleRules(),
    );

    const claim = this.deps.claims ? inviteClaimName(req.callId, req.from.params.tag ?? '', parseCSeq(firstHeader(req.headers, 'cseq') ?? '0 INVITE').seq) : undefined;
    if (claim !== undefined && !(await this.deps.claims!.claim(claim, req.dialogId))) {
      return this.reject(req, 'TALLENNE_MERGED_REQUEST', 'another recorder has answered this INVITE');
    }
    const unclaim = (): void => {
      if (claim !== undefined) this.deps.claims!.release(claim, req.dialogId);
    };

    const pairs: PortPair[] = [];
    try {
      for (let i = 0; i < plan.length; i++) pairs.push(await this.deps.ports.allocatePair());
    } catch (e) {
      for (const p of pairs) this.deps.ports.release(p);
      unclaim();
      if (e instanceof TallenneError && e.code === 'TALLENNE_NO_PORTS') return this.reject(req, 'TALLENNE_NO_PORTS', 'RTP port range exhausted');
      throw e;
    }

    const id = ulid();
    const log = this.deps.log.child({ recording: id });
    let spool: SpoolWriter;
    try {
      const keys = this.deps.spoolKeys;
      spool = new SpoolWriter(join(this.deps.spoolDir, `${id}.spool`), keys ? newSpoolKey(keys, id) : undefined);
    } catch (e) {
      for (const p of pairs) this.deps.ports.release(p);
      unclaim();
      return this.reject(req, 'TALLENNE_SPOOL_UNWRITABLE', `cannot create a spool file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const answeredAt = Date.now();
    const siprec = req.isSiprec || body.metadata !== undefined;
    const details = initialDetails({ id, callId: req.callId, siprec, answeredAt, roles, metadata: body.metadata, protect: this.protect(), node: c.cluster.node_id });
    const session = new CallSession({ id, dialogId: req.dialogId, spool, details, ...(body.metadata ? { metadata: body.metadata } : {}), log });
    spool.onError = (err) => session.log.error({ code: (err as NodeJS.ErrnoException).code, err: err.message }, 'spool write failed; the recording keeps what was written and is marked truncated');
    plan.forEach((p, i) => {
      const descriptor = legDescriptor(p.media, p.formats, roles, i === 0 ? 0 : 1);
      session.legs.push(new Leg({ descriptor, offer: p, source: c.rtp.source, pair: pairs[i]!, spool, counters: this.deps.rtpCounters, log }));
    });
    spool.appendMeta(answeredAt, session.meta);
    this.sessions.set(req.dialogId, session);
    if (claim !== undefined) this.claimed.set(session, claim);
    session.transition('answered');
    if (plan.every((p) => isPausedMedia(p.media))) session.setPaused(true, answeredAt);
    const sdp = this.answerSdp(session, body.sdp);
    log.info({ siprec, legs: session.legs.length, codecs: session.legs.map((l) => l.descriptor.formats[0]?.codec), srtp: session.legs.map((l) => l.srtpSuite ?? 'none'), direction: details.direction, transport: req.transport }, 'call answered');
    this.emit('answered', session);
    return { status: 200, sdp, siprec };
  }

  confirmed(dialogId: string): void {
    const s = this.sessions.get(dialogId);
    if (s && s.state === 'answered') s.confirm();
  }

  /**
   * A re-INVITE or UPDATE inside a call. Its body may be empty (a session refresh), a new
   * offer (codec change, pause, added streams), metadata alone (parties joined or left), or
   * both. A re-INVITE without an offer is answered with the session's current SDP.
   */
  async update(req: IncomingRequest): Promise<CallAnswer> {
    const session = this.sessions.get(req.dialogId);
    if (!session) return this.refuseUpdate(req, 'TALLENNE_DIALOG_NOT_FOUND', 'no such call');
    session.confirm();
    if (req.body.length === 0) return this.currentAnswer(req, session);
    let body: SessionBody;
    try {
      body = parseSessionBody(req.contentType, req.body);
    } catch (e) {
      return this.refuseBody(req, e);
    }
    // Every recorded m-line of a new offer is checked before anything is applied: a refused
    // re-offer (plain RTP while SRTP is required, keys that cannot be used) changes nothing.
    const mode = this.config.rtp.srtp;
    const replans = new Map<Leg, LegOffer>();
    if (body.sdp) {
      try {
        for (const leg of session.legs) {
          const media = body.sdp.media[leg.index];
          const plan = media ? planMedia(media, mode) : null;
          if (typeof plan === 'string') return this.refuseUpdate(req, plan, REFUSAL_WARNINGS[plan]);
          if (plan) replans.set(leg, plan);
        }
      } catch (e) {
        return this.refuseBody(req, e);
      }
    }
    const now = Date.now();
    if (body.metadata) session.metadata = session.metadata ? mergeMetadata(session.metadata, body.metadata) : body.metadata;
    const offer = body.sdp ?? session.lastOffer;
    const roles = session.metadata && offer
      ? assignRoles({ metadata: session.metadata, from: partyOf(req.from), to: partyOf(req.to), media: offer.media }, this.roleRules())
      : null;
    let added: Leg[] = [];
    if (body.sdp) {
      // Formats may change (codec switch), keys too (a re-key); ports stay, so audio
      // continues without a gap.
      for (const [leg, plan] of replans) {
        if (leg.applyOffer(plan)) session.log.info({ leg: leg.index, srtp: leg.srtpSuite ?? 'none' }, 'leg re-keyed');
      }
      added = await this.addLegs(session, body.sdp, roles);
      // The call ended while ports were being found for its new streams (endSession released them).
      if (!session.live) return this.refuseUpdate(req, 'TALLENNE_DIALOG_NOT_FOUND', 'the call ended during the update');
    }
    // The roles of the parties follow the new metadata; a leg already recording keeps its
    // channel and role, so the two sides of the file never swap mid-call.
    if (roles) session.details = updatedDetails(session.details, roles, session.metadata, now - session.details.answeredAt, this.protect());
    session.spool.appendMeta(now, session.meta);
    let paused = session.paused;
    if (body.sdp) {
      const recorded = session.legs.map((l) => body.sdp!.media[l.index]).filter((m): m is SdpMedia => m !== undefined);
      paused = recorded.length > 0 && recorded.every((m) => isPausedMedia(m));
      session.setPaused(paused, now);
      for (const l of added) l.receiver.setPaused(session.paused);
      session.sdpVersion++;
    }
    session.log.info({ paused, method: req.method, metadata: body.metadata?.dataMode ?? 'none', offer: body.sdp !== undefined, legsAdded: added.length, participants: session.details.participants.length }, 'call updated');
    if (body.sdp) return { status: 200, sdp: this.answerSdp(session, body.sdp) };
    return this.currentAnswer(req, session);
  }

  /** The answer to a request without an offer: a re-INVITE gets our current SDP, an UPDATE none. */
  private currentAnswer(req: IncomingRequest, session: CallSession): CallAnswer {
    if (req.method !== 'INVITE' || !session.lastOffer) return { status: 200 };
    return { status: 200, sdp: this.answerSdp(session, session.lastOffer) };
  }

  /**
   * Audio m-lines that a re-offer adds (a participant's own stream when a conference grows)
   * get ports and a Leg of their own. m-lines the call already records keep theirs. A full
   * port range leaves the new stream refused (port 0), the call goes on.
   */
  private async addLegs(session: CallSession, offer: SdpOffer, roles: RoleAssignment | null): Promise<Leg[]> {
    const added: Leg[] = [];
    for (const media of offer.media) {
      if (session.leg(media.index) || media.type !== 'audio' || media.port === 0 || session.legs.length >= MAX_LEGS) continue;
      const plan = planMedia(media, this.config.rtp.srtp);
      if (plan === null || typeof plan === 'string') continue;
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
      const leg = new Leg({ descriptor: legDescriptor(media, plan.formats, roles, 1), offer: plan, source: this.config.rtp.source, pair, spool: session.spool, counters: this.deps.rtpCounters, log: session.log });
      session.legs.push(leg);
      added.push(leg);
    }
    return added;
  }

  ended(dialogId: string, reason: DialogEndReason): void {
    const session = this.sessions.get(dialogId);
    if (!session) return;
    this.endSession(session, session.endReason ?? reason);
  }

  // ---- refusing ---------------------------------------------------------------------

  private reject(req: IncomingRequest, code: RejectionCode, warning: string, status?: number): CallAnswer {
    const rule: { status: number; reason: string; retryAfterSeconds?: number } = REJECTIONS[code];
    const rejection: Rejection = { method: req.method, status: status ?? rule.status, code, reason: rule.reason };
    this.deps.log.warn({ status: rejection.status, code, why: rule.reason, detail: scrubDigits(warning), transport: req.transport }, 'INVITE rejected');
    this.emit('rejected', rejection);
    return { status: rejection.status, warning, ...(rule.retryAfterSeconds ? { retryAfterSeconds: rule.retryAfterSeconds } : {}) };
  }

  private refuseUpdate(req: IncomingRequest, code: RejectionCode, warning: string, status?: number): CallAnswer {
    const rule = REJECTIONS[code];
    const rejection: Rejection = { method: req.method, status: status ?? rule.status, code, reason: rule.reason };
    this.deps.log.warn({ status: rejection.status, code, why: rule.reason, method: req.method, contentType: scrubDigits(req.contentType ?? ''), detail: scrubDigits(warning) }, 'in-dialog request refused');
    this.emit('updateRejected', rejection);
    return { status: rejection.status, warning };
  }

  /** A body we cannot use: refused with the parser's status and code. */
  private refuseBody(req: IncomingRequest, e: unknown): CallAnswer {
    if (!(e instanceof ProtocolError) || !isRejectionCode(e.code)) throw e;
    return req.method === 'INVITE' && !this.sessions.has(req.dialogId)
      ? this.reject(req, e.code, e.message, e.status)
      : this.refuseUpdate(req, e.code, e.message, e.status);
  }

  // ---- building the answer ----------------------------------------------------------

  private roleRules(): RoleRules {
    const c = this.config;
    return {
      serviceNumbers: c.roles.service_numbers,
      internalPattern: c.roles.internal_pattern,
      agents: c.agents,
      defaultCountry: c.privacy.default_country,
    };
  }

  private protect(): ProtectNumber {
    const privacy = this.config.privacy;
    return (user) => protectNumber(user, privacy, this.deps.hasher);
  }

  private answerSdp(session: CallSession, offer: SdpOffer): string {
    session.lastOffer = offer;
    const c = this.config;
    const media: MediaAnswer[] = offer.media.map((m) => {
      const leg = session.leg(m.index);
      const label = m.label ? { label: m.label } : {};
      if (!leg) return { index: m.index, port: 0, formats: [], direction: 'inactive', rtcpMux: false, ...label };
      return {
        index: m.index,
        port: leg.pair.port,
        formats: leg.descriptor.formats as MediaAnswer['formats'],
        direction: isPausedMedia(m) ? 'inactive' : 'recvonly',
        rtcpMux: m.rtcpMux,
        ...label,
        ...(leg.answerCrypto !== undefined ? { crypto: leg.answerCrypto } : {}),
      };
    });
    return buildSdpAnswer({ offer, address: c.rtp.advertise_address ?? c.rtp.address, sessionId: String(session.details.answeredAt), version: session.sdpVersion, media, userAgent: c.sip.user_agent });
  }

  // ---- ending -----------------------------------------------------------------------

  private endSession(session: CallSession, reason: string): void {
    if (!session.live) return;
    session.transition('ended');
    this.sessions.delete(session.dialogId);
    const claim = this.claimed.get(session);
    if (claim !== undefined) {
      this.claimed.delete(session);
      this.deps.claims!.release(claim, session.dialogId);
    }
    const endedAt = Date.now();
    for (const l of session.legs) this.deps.ports.release(l.close());
    session.log.info({ reason, durationMs: endedAt - session.details.answeredAt }, 'call ended');
    this.emit('ended', session, session.spool.close({ endedAt, reason }));
    if (this.sessions.size === 0) this.emit('idle');
  }

  /** Ends a call from our side: a BYE through the user agent, which reports `ended`. */
  private hangUp(session: CallSession, reason: string): void {
    session.endReason = reason;
    this.deps.hangUp(session.dialogId);
    // A dialog the user agent no longer knows cannot report back: end the call here.
    this.endSession(session, reason);
  }

  private flushSpools(): void {
    for (const s of this.sessions.values()) s.spool.flush();
  }

  private watchInactivity(): void {
    const limit = this.config.rtp.inactivity_timeout.ms;
    const now = Date.now();
    for (const s of [...this.sessions.values()]) {
      if (s.state === 'offered') continue;
      if (s.paused) {
        this.probeIfQuiet(s, now, limit);
        continue;
      }
      if (now - s.lastActivity() > limit) {
        s.log.warn({ silentMs: now - s.lastActivity() }, 'no RTP within the inactivity timeout; ending the call');
        this.hangUp(s, 'rtp-timeout');
      }
    }
  }

  /**
   * A paused call has no RTP, so its silence proves nothing; a peer that died while the call
   * was paused would leave it up for good. After the inactivity timeout without a sign of
   * life, its peer is asked with an in-dialog OPTIONS, and again each timeout after an answer.
   * Any answer (a 405 too) says the peer is there; 481 (it has no such call) or no answer at
   * all ends the call, as `peer-gone`.
   */
  private probeIfQuiet(s: CallSession, now: number, limit: number): void {
    if (s.probing || now - s.lastActivity() <= limit) return;
    const asked = this.deps.probe(s.dialogId);
    if (!asked) return;
    s.probing = true;
    void asked.then((status) => {
      s.probing = false;
      const result: ProbeResult = status === 481 ? 'gone' : status === 408 ? 'unanswered' : 'answered';
      this.emit('probed', result);
      if (!s.live) return;
      if (result === 'answered') return s.peerAnswered(Date.now());
      s.log.warn({ status }, 'the peer of a paused call did not confirm it; ending the call');
      this.hangUp(s, 'peer-gone');
    });
  }

  /**
   * Free bytes on the audio store's volume as last asked (at most FREE_SPACE_CACHE_MS ago for
   * an INVITE, which waits for a fresh answer; an OPTIONS probe gets the last one and starts a
   * refresh). A store without a volume has no floor; one that cannot answer counts as full.
   */
  private freeBytes(): number {
    if (this.freeSpaceStale()) void this.refreshFreeSpace();
    return this.freeSpace.bytes;
  }

  private freeSpaceStale(): boolean {
    return Date.now() - this.freeSpace.at > FREE_SPACE_CACHE_MS;
  }

  private refreshFreeSpace(): Promise<void> {
    this.freeSpaceRefresh ??= this.deps.store.usage().then(
      (u) => {
        this.freeSpace = { at: Date.now(), bytes: u.freeBytes ?? Number.POSITIVE_INFINITY };
      },
      () => {
        this.freeSpace = { at: Date.now(), bytes: 0 };
      },
    ).finally(() => {
      this.freeSpaceRefresh = null;
    });
    return this.freeSpaceRefresh;
  }

  // ---- stopping ---------------------------------------------------------------------

  /** New INVITEs are refused from now on. */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Waits until no call is live or the deadline passes; then hangs up what is left. */
  async drain(deadlineMs: number): Promise<void> {
    if (this.sessions.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.once('idle', () => r())),
        new Promise<void>((r) => { timer = setTimeout(r, deadlineMs); }),
      ]);
      clearTimeout(timer);
    }
    for (const s of [...this.sessions.values()]) this.hangUp(s, 'shutdown');
  }

  close(): void {
    clearInterval(this.flushTimer);
    clearInterval(this.watchTimer);
  }

  /**
   * Stops now: every live call stops capturing and its spool is closed as it stands, without
   * an END record, so the next start recovers it as a truncated recording. No `ended` event.
   */
  async abort(): Promise<void> {
    this.accepting = false;
    this.close();
    const closing: Promise<void>[] = [];
    for (const s of [...this.sessions.values()]) {
      s.transition('ended');
      this.sessions.delete(s.dialogId);
      for (const l of s.legs) this.deps.ports.release(l.close());
      closing.push(s.spool.close(null));
    }
    await Promise.allSettled(closing);
  }
}

/** The Warning text of the refusals planning can give. */
const REFUSAL_WARNINGS: Readonly<Record<PlanRefusal, string>> = {
  TALLENNE_NO_USABLE_CODEC: 'no offered audio stream has a codec this recorder can decode',
  TALLENNE_SRTP_REQUIRED: 'this recorder requires SRTP (RTP/SAVP with a=crypto); the offer is plain RTP',
  TALLENNE_SRTP_UNSUPPORTED: 'the offered media security is not supported: SDES-SRTP (RTP/SAVP with a=crypto) with AES_CM_128_HMAC_SHA1_80/32 or AEAD_AES_128/256_GCM is; DTLS-SRTP is not',
};

/**
 * What one m-line gives: a leg's formats and keys, a refusal code when its keying cannot
 * be taken (an SRTP profile we cannot key, or plain RTP while SRTP is required), or null
 * when it is not recordable audio. Throws ProtocolError for malformed a=crypto lines.
 */
function planMedia(media: SdpMedia, srtp: 'optional' | 'required'): MediaPlan {
  if (media.type !== 'audio' || media.port === 0) return null;
  const keying = offeredKeying(media.proto, media.cryptoAttributes);
  if (keying.kind === 'unsupported') return 'TALLENNE_SRTP_UNSUPPORTED';
  if (keying.kind === 'plain' && srtp === 'required') return 'TALLENNE_SRTP_REQUIRED';
  const formats = chooseFormats(media, RECORDABLE_CODECS);
  return formats ? { media, formats, keying } : null;
}

/**
 * The legs an offer makes, or the refusal when it makes none: a keying refusal names the
 * cause better than "no codec" when one was the reason an m-line was left out.
 */
function planLegs(offer: SdpOffer, srtp: 'optional' | 'required'): LegOffer[] | PlanRefusal {
  const plan: LegOffer[] = [];
  let refusal: PlanRefusal = 'TALLENNE_NO_USABLE_CODEC';
  for (const media of offer.media) {
    const p = planMedia(media, srtp);
    if (typeof p === 'string') refusal = p;
    else if (p) plan.push(p);
  }
  return plan.length > 0 ? plan : refusal;
}

function partyOf(na: { uri: string; displayName?: string }): { uri: string; user?: string; displayName?: string } {
  const user = uriUser(na.uri);
  return { uri: na.uri, ...(user ? { user } : {}), ...(na.displayName ? { displayName: na.displayName } : {}) };
}

