/**
 * Users and API tokens of the access API in the PostgreSQL register (tables `users` and
 * `tokens`), with the rules of the LMDB directory (src/index/users.ts): a token's secret is
 * kept only as its SHA-256, a local user's name is taken once, each change may carry an audit
 * entry committed with it. Rows are locked before a change, so nodes take turns.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { AuditInput } from '../audit.js';
import { externalUserRecord, judgeToken, localUser, type ExternalUser, type NewUser, type TokenCheck, type TokenRecord, type UserDirectory, type UserRecord } from '../users.js';
import type { PostgresAuditLog } from './audit.js';
import { transaction, type Db, type Tx } from './pool.js';

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export class PostgresUserDirectory implements UserDirectory {
  constructor(
    private readonly db: Db,
    private readonly audit: PostgresAuditLog,
    private readonly now: () => number,
  ) {}

  async addUser(u: NewUser, audit?: AuditInput): Promise<UserRecord> {
    const rec = localUser(u, this.now());
    await transaction(this.db, async (tx) => {
      const existing = await lockUser(tx, u.name);
      if (existing && existing.source === 'local') throw new Error(`user ${u.name} already exists`);
      await putUser(tx, rec);
      if (audit) await this.audit.appendIn(tx, audit);
    });
    return rec;
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    if (name.length === 0 || name.length > 200) return undefined;
    return (await this.db.query<{ record: UserRecord }>('SELECT record FROM users WHERE name = $1', [name])).rows[0]?.record;
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.db.query<{ record: UserRecord }>('SELECT record FROM users ORDER BY name COLLATE "C"')).rows.map((r) => r.record);
  }

  disableUser(name: string, audit?: AuditInput): Promise<boolean> {
    return transaction(this.db, async (tx) => {
      const u = await lockUser(tx, name);
      if (!u || u.source !== 'local') return false;
      if (u.disabledAt === undefined) await putUser(tx, { ...u, disabledAt: iso(this.now()) });
      if (audit) await this.audit.appendIn(tx, audit);
      return true;
    });
  }

  async createToken(user: string, expiresAt: string | undefined, audit?: AuditInput): Promise<{ token: string; record: TokenRecord }> {
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: TokenRecord = { id, user, hash: sha256(secret), createdAt: iso(this.now()), ...(expiresAt !== undefined ? { expiresAt } : {}) };
    await transaction(this.db, async (tx) => {
      const u = await lockUser(tx, user);
      if (!u || u.source !== 'local') throw new Error(`no user ${user}`);
      if (u.disabledAt !== undefined) throw new Error(`user ${user} is disabled`);
      const r = await tx.query('INSERT INTO tokens (id, user_name, record) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING', [id, user, JSON.stringify(record)]);
      if ((r.rowCount ?? 0) === 0) throw new Error('token id collision; try again');
      if (audit) await this.audit.appendIn(tx, { ...audit, details: { ...audit.details, tokenId: id } });
    });
    return { token: `tln.${id}.${secret}`, record };
  }

  revokeToken(id: string, audit?: AuditInput): Promise<TokenRecord | undefined> {
    return transaction(this.db, async (tx) => {
      const t = await lockToken(tx, id);
      if (!t) return undefined;
      const revoked = t.revokedAt === undefined ? { ...t, revokedAt: iso(this.now()) } : t;
      await putToken(tx, revoked);
      if (audit) await this.audit.appendIn(tx, audit);
      return revoked;
    });
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    if (!/^[0-9a-f]{16}$/.test(id)) return undefined;
    return (await this.db.query<{ record: TokenRecord }>('SELECT record FROM tokens WHERE id = $1', [id])).rows[0]?.record;
  }

  async tokensOf(user: string): Promise<TokenRecord[]> {
    return (await this.db.query<{ record: TokenRecord }>('SELECT record FROM tokens WHERE user_name = $1 ORDER BY id', [user])).rows.map((r) => r.record);
  }

  async checkToken(id: string, secret: string, now: number): Promise<TokenCheck> {
    const t = await this.getToken(id);
    if (!t) return { ok: false, why: 'unknown' };
    return judgeToken(t, secret, now, (name) => this.getUser(name));
  }

  async touch(name: string, tokenId: string | undefined, at: number): Promise<void> {
    await transaction(this.db, async (tx) => {
      const u = await lockUser(tx, name);
      if (u) await putUser(tx, { ...u, lastUsedAt: iso(at) });
      const t = tokenId !== undefined ? await lockToken(tx, tokenId) : undefined;
      if (t) await putToken(tx, { ...t, lastUsedAt: iso(at) });
    });
  }

  async noteExternal(u: ExternalUser, at: number): Promise<void> {
    await transaction(this.db, async (tx) => {
      await putUser(tx, externalUserRecord(await lockUser(tx, u.name), u, at));
    });
  }

}

async function lockUser(tx: Tx, name: string): Promise<UserRecord | undefined> {
  return (await tx.query<{ record: UserRecord }>('SELECT record FROM users WHERE name = $1 FOR UPDATE', [name])).rows[0]?.record;
}

async function putUser(tx: Tx, u: UserRecord): Promise<void> {
  await tx.query('INSERT INTO users (name, record) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record', [u.name, JSON.stringify(u)]);
}

async function lockToken(tx: Tx, id: string): Promise<TokenRecord | undefined> {
  return (await tx.query<{ record: TokenRecord }>('SELECT record FROM tokens WHERE id = $1 FOR UPDATE', [id])).rows[0]?.record;
}

async function putToken(tx: Tx, t: TokenRecord): Promise<void> {
  await tx.query('INSERT INTO tokens (id, user_name, record) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record', [t.id, t.user, JSON.stringify(t)]);
}
