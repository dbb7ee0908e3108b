/**
 * Users and API tokens of the access API, in the index's LMDB environment (tables `users`
 * and `tokens`). A token is shown once, when created; only the SHA-256 of its secret part is
 * stored, so the table gives nobody a usable token. Writes run in write transactions, so the
 * CLI and the daemon can change users at the same time; each change may carry an audit
 * entry written in the same transaction.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database, RootDatabase } from 'lmdb';
import type { AccessRole } from '../access/roles.js';
import type { AuditInput, LmdbAuditLog } from './audit.js';

export interface UserRecord {
  readonly name: string;
  readonly roles: readonly AccessRole[];
  readonly agentId?: string;
  readonly teams: readonly string[];
  /** ISO time after which the user is refused. */
  readonly expiresAt?: string;
  readonly disabledAt?: string;
  readonly createdAt: string;
  /** Last successful authentication (any token, a session, OIDC). */
  readonly lastUsedAt?: string;
  /** 'local': made with `tallenne users add`; 'oidc': seen through single sign-on (for the access review). */
  readonly source: 'local' | 'oidc';
}

export interface TokenRecord {
  readonly id: string;
  readonly user: string;
  /** SHA-256 (hex) of the token's secret part. */
  readonly hash: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
  readonly lastUsedAt?: string;
}

export type NewUser = Pick<UserRecord, 'name' | 'roles' | 'teams'> & { agentId?: string; expiresAt?: string };

/** Why a presented token is refused; `null` from parseToken means "not one of ours". */
export type TokenCheck =
  | { ok: true; token: TokenRecord; user: UserRecord }
  | { ok: false; why: 'unknown' | 'revoked' | 'expired' | 'user-disabled' | 'user-expired' };

export interface UserDirectory {
  /** Throws when the name is taken. */
  addUser(u: NewUser, audit?: AuditInput): Promise<UserRecord>;
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  /** False when there is no such local user. Disabled users and all their tokens are refused. */
  disableUser(name: string, audit?: AuditInput): Promise<boolean>;
  /** The token text (shown once) and its stored record. Throws when the user does not exist. */
  createToken(user: string, expiresAt: string | undefined, audit?: AuditInput): Promise<{ token: string; record: TokenRecord }>;
  /** False when there is no such token. */
  revokeToken(id: string, audit?: AuditInput): Promise<TokenRecord | undefined>;
  getToken(id: string): Promise<TokenRecord | undefined>;
  tokensOf(user: string): Promise<TokenRecord[]>;
  /** Checks a presented token (already split by parseToken) against the tables. */
  checkToken(id: string, secret: string, now: number): Promise<TokenCheck>;
  /** Notes a successful authentication. */
  touch(name: string, tokenId: string | undefined, at: number): Promise<void>;
  /** Keeps a single-sign-on user's roles and last use, for the access review. */
  noteExternal(u: ExternalUser, at: number): Promise<void>;
}

const TOKEN_PREFIX = 'tln';
const TOKEN_RE = /^tln\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
/** User names: what a person types, never an address or number by accident of format. */
export const USER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

/** Splits "tln.<id>.<secret>"; null when the text is not shaped like a local token. */
export function parseToken(text: string): { id: string; secret: string } | null {
  const m = TOKEN_RE.exec(text);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

/** Why a user may not log in now, or null when they may. */
export function userRefusal(u: UserRecord, now: number): 'user-disabled' | 'user-expired' | null {
  if (u.disabledAt !== undefined) return 'user-disabled';
  if (u.expiresAt !== undefined && Date.parse(u.expiresAt) <= now) return 'user-expired';
  return null;
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The record of a new local user (the name checked, roles and teams without repeats). */
/** Who an OpenID login says a user is. */
export type ExternalUser = Pick<UserRecord, 'name' | 'roles' | 'teams'> & { agentId?: string };

/**
 * The record kept for a user seen through an OpenID login: a local user of the same name keeps
 * its own record and only its last use moves; otherwise the login's roles and teams are taken.
 */
export function externalUserRecord(existing: UserRecord | undefined, u: ExternalUser, at: number): UserRecord {
  if (existing && existing.source === 'local') return { ...existing, lastUsedAt: iso(at) };
  return {
    name: u.name,
    roles: [...u.roles],
    teams: [...u.teams],
    ...(u.agentId !== undefined ? { agentId: u.agentId } : {}),
    createdAt: existing?.createdAt ?? iso(at),
    lastUsedAt: iso(at),
    source: 'oidc',
  };
}

export function localUser(u: NewUser, now: number): UserRecord {
  if (!USER_NAME_RE.test(u.name)) throw new Error(`"${u.name}" is not a user name (letters, digits, . _ @ -; at most 64)`);
  return {
    name: u.name,
    roles: [...new Set(u.roles)],
    teams: [...new Set(u.teams)],
    ...(u.agentId !== undefined ? { agentId: u.agentId } : {}),
    ...(u.expiresAt !== undefined ? { expiresAt: u.expiresAt } : {}),
    createdAt: iso(now),
    source: 'local',
  };
}

/** Checks a presented secret against a stored token, then the token's and its user's state. */
export async function judgeToken(
  t: TokenRecord,
  secret: string,
  now: number,
  userOf: (name: string) => UserRecord | undefined | Promise<UserRecord | undefined>,
): Promise<TokenCheck> {
  const a = Buffer.from(t.hash, 'hex');
  const b = Buffer.from(sha256(secret), 'hex');
  if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, why: 'unknown' };
  if (t.revokedAt !== undefined) return { ok: false, why: 'revoked' };
  if (t.expiresAt !== undefined && Date.parse(t.expiresAt) <= now) return { ok: false, why: 'expired' };
  const u = await userOf(t.user);
  const refused = u ? userRefusal(u, now) : 'user-disabled';
  if (refused !== null) return { ok: false, why: refused };
  return { ok: true, token: t, user: u! };
}

export class LmdbUserDirectory implements UserDirectory {
  constructor(
    private readonly env: RootDatabase,
    private readonly users: Database<UserRecord, string>,
    private readonly tokens: Database<TokenRecord, string>,
    private readonly audit: LmdbAuditLog,
    private readonly now: () => number,
  ) {}

  async addUser(u: NewUser, audit?: AuditInput): Promise<UserRecord> {
    const rec = localUser(u, this.now());
    const ok = await this.env.transaction(() => {
      const existing = this.users.get(u.name);
      if (existing && existing.source === 'local') return false;
      this.users.put(u.name, rec);
      if (audit) this.audit.appendInTransaction(audit);
      return true;
    });
    if (!ok) throw new Error(`user ${u.name} already exists`);
    return rec;
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    if (name.length === 0 || name.length > 200) return undefined;
    return this.users.get(name);
  }

  async listUsers(): Promise<UserRecord[]> {
    return [...this.users.getRange({})].map((r) => r.value);
  }

  disableUser(name: string, audit?: AuditInput): Promise<boolean> {
    return this.env.transaction(() => {
      const u = this.users.get(name);
      if (!u || u.source !== 'local') return false;
      if (u.disabledAt === undefined) this.users.put(name, { ...u, disabledAt: iso(this.now()) });
      if (audit) this.audit.appendInTransaction(audit);
      return true;
    });
  }

  async createToken(user: string, expiresAt: string | undefined, audit?: AuditInput): Promise<{ token: string; record: TokenRecord }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: TokenRecord = {
      id,
      user,
      hash: sha256(secret),
      createdAt: iso(this.now()),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
    const problem = await this.env.transaction(() => {
      const u = this.users.get(user);
      if (!u || u.source !== 'local') return `no user ${user}`;
      if (u.disabledAt !== undefined) return `user ${user} is disabled`;
      if (this.tokens.get(id)) return 'token id collision; try again';
      this.tokens.put(id, record);
      if (audit) this.audit.appendInTransaction({ ...audit, details: { ...audit.details, tokenId: id } });
      return null;
    });
    if (problem !== null) throw new Error(problem);
    return { token: `${TOKEN_PREFIX}.${id}.${secret}`, record };
  }

  revokeToken(id: string, audit?: AuditInput): Promise<TokenRecord | undefined> {
    return this.env.transaction(() => {
      const t = this.tokens.get(id);
      if (!t) return undefined;
      const revoked = t.revokedAt === undefined ? { ...t, revokedAt: iso(this.now()) } : t;
      this.tokens.put(id, revoked);
      if (audit) this.audit.appendInTransaction(audit);
      return revoked;
    });
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    if (!/^[0-9a-f]{16}$/.test(id)) return undefined;
    return this.tokens.get(id);
  }

  async tokensOf(user: string): Promise<TokenRecord[]> {
    return [...this.tokens.getRange({})].map((r) => r.value).filter((t) => t.user === user);
  }

  async checkToken(id: string, secret: string, now: number): Promise<TokenCheck> {
    const t = this.tokens.get(id);
    if (!t) return { ok: false, why: 'unknown' };
    return judgeToken(t, secret, now, (name) => this.users.get(name));
  }

  async touch(name: string, tokenId: string | undefined, at: number): Promise<void> {
    await this.env.transaction(() => {
      const u = this.users.get(name);
      if (u) this.users.put(name, { ...u, lastUsedAt: iso(at) });
      const t = tokenId !== undefined ? this.tokens.get(tokenId) : undefined;
      if (t) this.tokens.put(t.id, { ...t, lastUsedAt: iso(at) });
    });
  }

  async noteExternal(u: ExternalUser, at: number): Promise<void> {
    await this.env.transaction(() => {
      this.users.put(u.name, externalUserRecord(this.users.get(u.name), u, at));
    });
  }

}
