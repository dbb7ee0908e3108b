/**
 * Who is calling: a bearer token (a local API token, or any registered verifier such as the
 * OIDC provider's access tokens) or the page's session cookie. Runs as the /api/v1 scope's
 * onRequest hook, before any body is read, so an unauthenticated request costs nothing more.
 * A session-authenticated request that changes state must carry the session's CSRF token.
 * Every refusal is audited as a failed login.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { scopeOf, type AgentScope } from '../../access/policy.js';
import { parseToken, userRefusal, type UserDirectory, type UserRecord } from '../../index/users.js';
import type { ApiAudit } from '../audit.js';
import { ApiError } from '../errors.js';
import type { BearerVerifier, Identity } from './identity.js';
import { CSRF_HEADER, SESSION_COOKIE, csrfMatches, type SessionStore } from './session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authentication hook on every route not marked public. */
    identity: Identity | null;
    /** Stable per login (session or token), for one audit entry per recording played. */
    sessionKey: string;
  }
  interface FastifyContextConfig {
    /** The route needs no identity (login, the OpenAPI document, the OIDC redirects). */
    public?: boolean;
  }
}

export interface AuthDeps {
  readonly users: UserDirectory;
  readonly sessions: SessionStore;
  /** The current `[[agents]]` (reloadable), for team scope. */
  readonly agents: () => readonly AgentScope[];
  readonly audit: ApiAudit;
  /** Failed authentications allowed per client address per minute (`[api] login_rate_limit`). */
  readonly failureLimit: () => number;
  readonly now?: () => number;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Last-use times are written at most this often per user. */
const TOUCH_EVERY_MS = 60_000;
const FAILURE_WINDOW_MS = 60_000;
/** Client addresses whose failures are tracked at most (the oldest window is dropped). */
const MAX_FAILURE_ADDRESSES = 10_000;

export class Authenticator {
  private readonly verifiers: BearerVerifier[];
  private readonly touched = new Map<string, number>();
  /** Failed authentications per client address in the current minute. */
  private readonly failures = new Map<string, { since: number; count: number }>();

  constructor(private readonly deps: AuthDeps) {
    this.verifiers = [(t) => this.verifyLocalToken(t)];
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Adds a bearer verifier (tried after the local tokens, in order of registration). */
  registerBearerVerifier(fn: BearerVerifier): void {
    this.verifiers.push(fn);
  }

  /** The identity of a local user, with team scope from `[[agents]]`. */
  identityOf(u: UserRecord, via: Identity['via'], extra: { tokenId?: string; expiresAt?: number } = {}): Identity {
    const expiries = [u.expiresAt !== undefined ? Date.parse(u.expiresAt) : undefined, extra.expiresAt].filter((x): x is number => x !== undefined);
    return {
      name: u.name,
      roles: u.roles,
      ...(u.agentId !== undefined ? { agentId: u.agentId } : {}),
      teams: scopeOf(u, this.deps.agents()),
      via,
      ...(extra.tokenId !== undefined ? { tokenId: extra.tokenId } : {}),
      ...(expiries.length > 0 ? { expiresAt: Math.min(...expiries) } : {}),
    };
  }

  /** Adds `[[agents]]` team scope to an identity made elsewhere (OIDC claims). */
  withScope(identity: Identity): Identity {
    return { ...identity, teams: scopeOf(identity, this.deps.agents()) };
  }

  /** The local API token verifier: null for text not shaped like a local token. */
  async verifyLocalToken(text: string): Promise<Identity | null> {
    if (!text.startsWith('tln.')) return null;
    const parsed = parseToken(text);
    if (!parsed) throw new ApiError('API_INVALID_TOKEN', 'the token is malformed');
    const now = this.now();
    const c = await this.deps.users.checkToken(parsed.id, parsed.secret, now);
    if (!c.ok) {
      if (c.why === 'user-disabled' || c.why === 'user-expired') throw new ApiError('API_USER_DISABLED');
      throw new ApiError('API_INVALID_TOKEN', `the token is ${c.why}`);
    }
    const expiresAt = c.token.expiresAt !== undefined ? Date.parse(c.token.expiresAt) : undefined;
    return this.identityOf(c.user, 'token', { tokenId: c.token.id, ...(expiresAt !== undefined ? { expiresAt } : {}) });
  }

  /** Runs the verifiers in order; the first that knows the token decides. */
  async verifyBearer(token: string): Promise<Identity> {
    for (const v of this.verifiers) {
      const id = await v(token);
      if (id) return id;
    }
    throw new ApiError('API_INVALID_TOKEN');
  }

  /** The onRequest hook body: sets request.identity or throws a 401/403 ApiError (audited). */
  async authenticate(request: FastifyRequest, _reply?: FastifyReply): Promise<void> {
    this.refuseIfThrottled(request);
    try {
      const { identity, key } = await this.identify(request);
      request.identity = identity;
      request.sessionKey = key;
      this.noteUse(identity);
    } catch (e) {
      if (e instanceof ApiError) await this.failed(request, e.code, { path: routeOf(request) });
      throw e;
    }
  }

  /**
   * A failed authentication: audited, and counted per client address so that guessing
   * tokens (or filling the audit log with failures) is cut off at `[api] login_rate_limit`
   * a minute.
   */
  async failed(request: FastifyRequest, why: string, details: Record<string, string> = {}): Promise<void> {
    const now = this.now();
    const f = this.failures.get(request.ip);
    if (!f || now - f.since >= FAILURE_WINDOW_MS) {
      if (!f && this.failures.size >= MAX_FAILURE_ADDRESSES) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(request.ip, { since: now, count: 1 });
    } else f.count++;
    await this.deps.audit.record(request, undefined, { action: 'login-failed', details: { ...details, why } });
  }

  /** Throws 429 while the client address is over its failed-authentication budget. */
  refuseIfThrottled(request: FastifyRequest): void {
    const f = this.failures.get(request.ip);
    if (f && this.now() - f.since < FAILURE_WINDOW_MS && f.count >= this.deps.failureLimit()) {
      throw new ApiError('API_RATE_LIMITED', 'too many failed logins from this address; wait a minute');
    }
  }

  private async identify(request: FastifyRequest): Promise<{ identity: Identity; key: string }> {
    const auth = request.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S{1,4096})\s*$/i.exec(auth);
      if (!m) throw new ApiError('API_INVALID_TOKEN', 'the Authorization header must be "Bearer TOKEN"');
      const identity = await this.verifyBearer(m[1]!);
      return { identity, key: identity.tokenId ?? `bearer:${identity.name}` };
    }
    const cookie = request.cookies?.[SESSION_COOKIE];
    if (cookie === undefined || cookie === '') throw new ApiError('API_UNAUTHENTICATED');
    const session = this.deps.sessions.get(cookie);
    if (!session) throw new ApiError('API_SESSION_EXPIRED');
    await this.revalidate(session.identity, cookie);
    if (!SAFE_METHODS.has(request.method)) {
      const presented = request.headers[CSRF_HEADER];
      if (!csrfMatches(session, typeof presented === 'string' ? presented : undefined)) throw new ApiError('API_CSRF');
    }
    return { identity: session.identity, key: `session:${session.createdAt}:${session.csrfToken.slice(0, 8)}` };
  }

  /** A session of a local user ends when the user is disabled or expires, or its token is revoked. */
  private async revalidate(identity: Identity, cookie: string): Promise<void> {
    if (identity.via === 'oidc') return;
    const now = this.now();
    const u = await this.deps.users.getUser(identity.name);
    const t = identity.tokenId !== undefined ? await this.deps.users.getToken(identity.tokenId) : undefined;
    const refused = !u || userRefusal(u, now) !== null || (identity.tokenId !== undefined && (!t || t.revokedAt !== undefined || (t.expiresAt !== undefined && Date.parse(t.expiresAt) <= now)));
    if (refused) {
      this.deps.sessions.destroy(cookie);
      throw new ApiError('API_SESSION_EXPIRED', 'the user or token behind this session is no longer valid');
    }
  }

  /** Records the last use of a user (at most once a minute per user). */
  noteUse(identity: Identity): void {
    const now = this.now();
    const key = `${identity.name}\u0000${identity.tokenId ?? ''}`;
    const last = this.touched.get(key);
    if (last !== undefined && now - last < TOUCH_EVERY_MS) return;
    this.touched.set(key, now);
    const write =
      identity.via === 'oidc'
        ? this.deps.users.noteExternal({ name: identity.name, roles: identity.roles, teams: identity.teams, ...(identity.agentId !== undefined ? { agentId: identity.agentId } : {}) }, now)
        : this.deps.users.touch(identity.name, identity.tokenId, now);
    // Last use is bookkeeping for the access review: a failed write never fails the request.
    write.catch(() => this.touched.delete(key));
  }
}

/** The matched route pattern (never the raw URL, which may hold a filter value). */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions?.url ?? 'unmatched';
}
