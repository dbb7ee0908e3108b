/**
 * The audit log in PostgreSQL: one hash chain for every node writing to the register. An
 * append locks the chain's head row, so appends from all nodes queue on it and each entry
 * chains to the one committed before it; the entry names the node that wrote it. An append
 * may run inside a caller's transaction (the change it records commits with it, or neither).
 */
import type { AuditEntry, AuditInput, AuditLog, AuditVerdict } from '../audit.js';
import { ChainCheck, chainEntry, type ChainHead } from '../audit-chain.js';
import { transaction, type Db, type Tx } from './pool.js';

const VERIFY_BATCH = 5000;

export class PostgresAuditLog implements AuditLog {
  constructor(
    private readonly db: Db,
    private readonly node: string,
    private readonly now: () => number,
  ) {}

  append(e: AuditInput): Promise<AuditEntry> {
    return transaction(this.db, (tx) => this.appendIn(tx, e));
  }

  /** Writes the next entry inside `tx`; the head stays locked until `tx` ends. */
  async appendIn(tx: Tx, e: AuditInput): Promise<AuditEntry> {
    const head = (await tx.query<ChainHead>('SELECT seq, hash FROM audit_head WHERE one FOR UPDATE')).rows[0]!;
    const entry = chainEntry(head, e, new Date(this.now()).toISOString(), this.node);
    await tx.query('INSERT INTO audit_log (seq, entry) VALUES ($1, $2)', [entry.seq, JSON.stringify(entry)]);
    await tx.query('UPDATE audit_head SET seq = $1, hash = $2 WHERE one', [entry.seq, entry.hash]);
    return entry;
  }

  async list(page: { after?: number; limit: number }): Promise<AuditEntry[]> {
    const r = await this.db.query<{ entry: AuditEntry }>('SELECT entry FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [page.after ?? 0, Math.max(0, Math.floor(page.limit))]);
    return r.rows.map((x) => x.entry);
  }

  /** Walks the whole chain in one snapshot (appends meanwhile are not seen, nor half seen). */
  async verify(): Promise<AuditVerdict> {
    const tx = await this.db.connect();
    try {
      await tx.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const head = (await tx.query<ChainHead>('SELECT seq, hash FROM audit_head WHERE one')).rows[0];
      const check = new ChainCheck();
      let after = 0;
      for (;;) {
        const rows = (await tx.query<{ seq: number; entry: AuditEntry }>('SELECT seq, entry FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [after, VERIFY_BATCH])).rows;
        for (const r of rows) {
          const broken = check.next(r.seq, r.entry);
          if (broken) return broken;
        }
        if (rows.length < VERIFY_BATCH) break;
        after = rows[rows.length - 1]!.seq;
      }
      // An empty chain's head row holds seq 0: the same as no head at all.
      return check.finish(head && head.seq > 0 ? head : undefined);
    } finally {
      await tx.query('ROLLBACK').catch(() => undefined);
      tx.release();
    }
  }
}
