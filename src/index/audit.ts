/**
 * The audit log: append-only, in the same LMDB environment as the recordings, each entry
 * hash-chained to the one before it. An edited entry no longer matches its own hash; a
 * deleted entry leaves a gap in the sequence (or, at the tail, disagrees with the head
 * record kept beside the log). Entries name who did what to which recording, when and why,
 * never a phone number: callers pass ids, policy names and counts in `details`.
 */
import { ChainCheck, chainEntry, GENESIS_HASH, type ChainHead } from './audit-chain.js';
import type { Database, RootDatabase } from 'lmdb';

export interface AuditEntry {
  seq: number;
  at: string;
  /** `[cluster] node_id` of the process that appended it (absent in entries written before nodes were recorded). */
  node?: string;
  actor: string;
  action: string;
  recordingId?: string;
  reason?: string;
  details?: Record<string, string | number | boolean>;
  prevHash: string;
  hash: string;
}

export interface AuditInput {
  actor: string;
  action: string;
  recordingId?: string;
  reason?: string;
  details?: Record<string, string | number | boolean>;
}

export type AuditVerdict = { ok: true; entries: number } | { ok: false; at: number; problem: string };

export { auditHash, GENESIS_HASH } from './audit-chain.js';

export interface AuditLog {
  append(e: AuditInput): Promise<AuditEntry>;
  list(page: { after?: number; limit: number }): Promise<AuditEntry[]>;
  verify(): Promise<AuditVerdict>;
}

const HEAD_KEY = 'auditHead';

export class LmdbAuditLog implements AuditLog {
  constructor(
    private readonly env: RootDatabase,
    private readonly db: Database<AuditEntry, number>,
    private readonly meta: Database<unknown, string>,
    private readonly now: () => number = Date.now,
    private readonly nodeId?: string,
  ) {}

  append(e: AuditInput): Promise<AuditEntry> {
    return this.env.transaction(() => this.appendInTransaction(e));
  }

  /**
   * Writes the next entry; must run inside a write transaction of the environment so the
   * read of the head and the write are atomic across processes (LMDB has one writer).
   */
  appendInTransaction(e: AuditInput): AuditEntry {
    const head = (this.meta.get(HEAD_KEY) as ChainHead | undefined) ?? { seq: 0, hash: GENESIS_HASH };
    const entry = chainEntry(head, e, new Date(this.now()).toISOString(), this.nodeId);
    this.db.put(entry.seq, entry);
    this.meta.put(HEAD_KEY, { seq: entry.seq, hash: entry.hash } satisfies ChainHead);
    return entry;
  }

  async list(page: { after?: number; limit: number }): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (const { value } of this.db.getRange({ start: (page.after ?? 0) + 1, limit: Math.max(0, page.limit) })) out.push(value);
    return out;
  }

  async verify(): Promise<AuditVerdict> {
    const check = new ChainCheck();
    for (const { key, value } of this.db.getRange({})) {
      const broken = check.next(key, value);
      if (broken) return broken;
    }
    return check.finish(this.meta.get(HEAD_KEY) as ChainHead | undefined);
  }
}
