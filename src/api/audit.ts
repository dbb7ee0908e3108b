/**
 * The API's use of the audit chain: every list, view, play, export, subject search, hold,
 * release, erase, rectify, login, failed login and denial is appended with the actor, the
 * role that allowed (or the roles that did not), the recording, the reason given and the
 * client address. Filters are recorded by name, never by value (a number filter is personal
 * data).
 */
import type { FastifyRequest } from 'fastify';
import type { AuditLog } from '../index/index.js';
import type { Identity } from './auth/identity.js';

export interface ApiAuditInput {
  readonly action: string;
  readonly recordingId?: string;
  readonly reason?: string;
  /** The role that allowed the action; absent on a denial (the identity's roles are written). */
  readonly role?: string;
  readonly details?: Record<string, string | number | boolean>;
}

/** Plays remembered per caller, so a player's many Range requests make one audit entry. */
const MAX_PLAY_KEYS = 50_000;

export class ApiAudit {
  private readonly played = new Map<string, number>();

  constructor(private readonly log: AuditLog, private readonly now: () => number = Date.now) {}

  async record(request: FastifyRequest, who: Identity | { name: string } | undefined, e: ApiAuditInput): Promise<void> {
    const identity = who && 'roles' in who ? who : undefined;
    const details: Record<string, string | number | boolean> = {
      ...e.details,
      client: request.ip,
      ...(e.role !== undefined ? { role: e.role } : identity ? { roles: identity.roles.join(',') || '-' } : {}),
      ...(identity ? { via: identity.via } : {}),
    };
    await this.log.append({
      actor: who ? actorName(who) : 'anonymous',
      action: e.action,
      ...(e.recordingId !== undefined ? { recordingId: e.recordingId } : {}),
      ...(e.reason !== undefined && e.reason.trim() !== '' ? { reason: e.reason } : {}),
      details,
    });
  }

  /**
   * True the first time this caller plays this recording within `windowMs` (one audit entry
   * per recording per session or token, however many Range requests the player makes).
   */
  firstPlay(identity: Identity, sessionKey: string, recordingId: string, windowMs = 8 * 3600_000): boolean {
    const key = `${identity.name}\u0000${sessionKey}\u0000${recordingId}`;
    const now = this.now();
    const seen = this.played.get(key);
    if (seen !== undefined && now - seen < windowMs) return false;
    if (this.played.size >= MAX_PLAY_KEYS) {
      for (const [k, t] of this.played) if (now - t >= windowMs) this.played.delete(k);
      if (this.played.size >= MAX_PLAY_KEYS) this.played.delete(this.played.keys().next().value!);
    }
    this.played.set(key, now);
    return true;
  }
}

/** The actor as written to the chain: the user name, prefixed for single-sign-on users. */
export function actorName(who: Identity | { name: string }): string {
  return 'via' in who && who.via === 'oidc' ? `oidc:${who.name}` : who.name;
}
