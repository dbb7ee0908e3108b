/**
 * The audit log: append-only, in the same LMDB environment as the recordings, each entry
 * hash-chained to the one before it. An edited entry no longer matches its own hash; a
 * deleted entry leaves a gap in the sequence (or, at the tail, disagrees with the head
 * record kept beside the log). Entries name who did what to which recording, when and why,
 * never a phone number: callers pass ids, policy names and counts in `details`.
 */
import { createHash } from 'node:crypto';
import type { Database, RootDatabase } from 'lmdb';

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  recordingId?: string;
  reason?: string;
  details?: Record<string, string | number | boolean>;
  prevHash: string;
  /** The recorder that wrote it ([cluster] node_id), in a register shared by several. */
  node?: string;
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

export interface AuditLog {
  append(e: AuditInput): Promise<AuditEntry>;
  list(page: { after?: number; limit: number }): Promise<AuditEntry[]>;
  verify(): Promise<AuditVerdict>;
}

export const GENESIS_HASH = '0'.repeat(64);
const HEAD_KEY = 'auditHead';
const MAX_TEXT = 1000;

interface Head {
  seq: number;
  hash: string;
}

/** The hash of an entry: SHA-256 over a canonical JSON of every field but the hash itself. */
export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const details = e.details ? Object.keys(e.details).sort().map((k) => [k, e.details![k]]) : null;
  const fields: unknown[] = [e.seq, e.at, e.actor, e.action, e.recordingId ?? null, e.reason ?? null, details, e.prevHash];
  // Entries of a shared register name their node; older entries (none) hash as they always did.
  if (e.node !== undefined) fields.push(e.node);
  const canonical = JSON.stringify(fields);
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

function clip(s: string): string {
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s;
}

export class LmdbAuditLog implements AuditLog {
  constructor(
    private readonly env: RootDatabase,
    private readonly db: Database<AuditEntry, number>,
    private readonly meta: Database<unknown, string>,
    private readonly now: () => number = Date.now,
  ) {}

  append(e: AuditInput): Promise<AuditEntry> {
    return this.env.transaction(() => this.appendInTransaction(e));
  }

  /**
   * Writes the next entry; must run inside a write transaction of the environment so the
   * read of the head and the write are atomic across processes (LMDB has one writer).
   */
  appendInTransaction(e: AuditInput): AuditEntry {
    const head = (this.meta.get(HEAD_KEY) as Head | undefined) ?? { seq: 0, hash: GENESIS_HASH };
    const base: Omit<AuditEntry, 'hash'> = {
      seq: head.seq + 1,
      at: new Date(this.now()).toISOString(),
      actor: clip(e.actor),
      action: clip(e.action),
      prevHash: head.hash,
    };
    if (e.recordingId !== undefined) base.recordingId = clip(e.recordingId);
    if (e.reason !== undefined) base.reason = clip(e.reason);
    if (e.details !== undefined) base.details = { ...e.details };
    const entry: AuditEntry = { ...base, hash: auditHash(base) };
    this.db.put(entry.seq, entry);
    this.meta.put(HEAD_KEY, { seq: entry.seq, hash: entry.hash } satisfies Head);
    return entry;
  }

  async list(page: { after?: number; limit: number }): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for (const { value } of this.db.getRange({ start: (page.after ?? 0) + 1, limit: Math.max(0, page.limit) })) out.push(value);
    return out;
  }

  async verify(): Promise<AuditVerdict> {
    const head = this.meta.get(HEAD_KEY) as Head | undefined;
    let expectSeq = 1;
    let prevHash = GENESIS_HASH;
    let count = 0;
    for (const { key, value } of this.db.getRange({})) {
      if (typeof key !== 'number' || !value || typeof value !== 'object') {
        return { ok: false, at: expectSeq, problem: `an unreadable record sits where entry ${expectSeq} should be` };
      }
      if (key !== expectSeq || value.seq !== key) {
        const at = Math.min(key, expectSeq);
        return key > expectSeq
          ? { ok: false, at, problem: `entries ${expectSeq}..${key - 1} are missing (deleted)` }
          : { ok: false, at: key, problem: `entry stored under ${key} claims sequence ${value.seq}` };
      }
      if (value.prevHash !== prevHash) {
        return { ok: false, at: key, problem: `entry ${key} does not chain to entry ${key - 1} (its prevHash differs)` };
      }
      const { hash, ...rest } = value;
      if (auditHash(rest) !== hash) {
        return { ok: false, at: key, problem: `entry ${key} was altered (its content no longer matches its hash)` };
      }
      prevHash = hash;
      expectSeq++;
      count++;
    }
    const lastSeq = expectSeq - 1;
    if (head === undefined) {
      return count === 0 ? { ok: true, entries: 0 } : { ok: false, at: lastSeq, problem: 'the head record of the log is missing' };
    }
    if (head.seq > lastSeq) {
      return { ok: false, at: lastSeq + 1, problem: `entries ${lastSeq + 1}..${head.seq} are missing from the end of the log (deleted)` };
    }
    if (head.seq !== lastSeq || head.hash !== prevHash) {
      return { ok: false, at: lastSeq, problem: `the head record (entry ${head.seq}) does not match the last entry ${lastSeq}` };
    }
    return { ok: true, entries: count };
  }
}
