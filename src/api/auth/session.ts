/**
 * The page's server-side sessions. A session is a random value in the `tallenne_session`
 * cookie (HttpOnly, SameSite=Strict, Secure when the request came over TLS) that points at an
 * identity kept here, in memory: a restart logs everyone out. Each session has its own CSRF
 * token; a state-changing request authenticated by the cookie must echo it in X-CSRF-Token
 * (checked in auth/authenticate.ts).
 *
 * Logging in with an API token (POST /api/v1/session) and the OIDC callback both end in
 * openSession(), which creates the session, sets the cookie and writes the audit entry.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from './identity.js';

export const SESSION_COOKIE = 'tallenne_session';
export const CSRF_HEADER = 'x-csrf-token';
/** A session ends this long after login at the latest (sooner when the identity expires). */
export const SESSION_LIFETIME_MS = 8 * 3600_000;
/** Live sessions kept at most; the oldest is dropped beyond it. */
const MAX_SESSIONS = 10_000;

export interface Session {
  readonly identity: Identity;
  readonly csrfToken: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

export interface CreatedSession {
  /** The cookie value. */
  readonly value: string;
  readonly csrfToken: string;
  readonly expiresAt: number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly opts: { lifetimeMs?: number; now?: () => number } = {}) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  createSession(identity: Identity): CreatedSession {
    const now = this.now();
    const value = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const lifetime = now + (this.opts.lifetimeMs ?? SESSION_LIFETIME_MS);
    const expiresAt = identity.expiresAt !== undefined ? Math.min(lifetime, identity.expiresAt) : lifetime;
    if (this.sessions.size >= MAX_SESSIONS) this.sweep(now, true);
    this.sessions.set(value, { identity: { ...identity, via: identity.via === 'token' ? 'session' : identity.via }, csrfToken, createdAt: now, expiresAt });
    return { value, csrfToken, expiresAt };
  }

  /** The live session of a cookie value; an expired one is dropped. */
  get(value: string): Session | undefined {
    const s = this.sessions.get(value);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(value);
      return undefined;
    }
    return s;
  }

  destroy(value: string): boolean {
    return this.sessions.delete(value);
  }

  /** Ends every session of a user (disabled, or a token revoked). */
  destroyUser(name: string): number {
    let n = 0;
    for (const [k, s] of this.sessions) if (s.identity.name === name && this.sessions.delete(k)) n++;
    return n;
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(now: number, dropOldest: boolean): void {
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
    if (dropOldest && this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next();
      if (!oldest.done) this.sessions.delete(oldest.value);
    }
  }
}

/** Compares a presented CSRF token with the session's in constant time. */
export function csrfMatches(session: Session, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrfToken);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, created: CreatedSession): void {
  reply.setCookie(SESSION_COOKIE, created.value, {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https',
    expires: new Date(created.expiresAt),
  });
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https' });
}
