/**
 * The audit chain's rules, apart from where the entries are kept: how an entry is hashed,
 * how the next one is made from the head, and how a stored chain is verified (fed the
 * entries in key order and then the head record, it reports the first break: an altered
 * entry, a gap, an entry that does not chain, a missing tail; or the count). The LMDB and
 * the PostgreSQL audit logs both go through it.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, AuditInput, AuditVerdict } from './audit.js';

export const GENESIS_HASH = '0'.repeat(64);
const MAX_TEXT = 1000;

export interface ChainHead {
  seq: number;
  hash: string;
}

/** The hash of an entry: SHA-256 over a canonical JSON of every field but the hash itself. */
export function auditHash(e: Omit<AuditEntry, 'hash'>): string {
  const details = e.details ? Object.keys(e.details).sort().map((k) => [k, e.details![k]]) : null;
  const fields: unknown[] = [e.seq, e.at, e.actor, e.action, e.recordingId ?? null, e.reason ?? null, details, e.prevHash];
  // Entries of a shared register name their node; entries without one hash as they always did.
  if (e.node !== undefined) fields.push(e.node);
  return createHash('sha256').update(JSON.stringify(fields), 'utf8').digest('hex');
}

function clip(s: string): string {
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s;
}

/** The entry that follows `head`: texts clipped, chained to the head's hash, hashed. */
export function chainEntry(head: ChainHead, e: AuditInput, at: string, node?: string): AuditEntry {
  const base: Omit<AuditEntry, 'hash'> = { seq: head.seq + 1, at, actor: clip(e.actor), action: clip(e.action), prevHash: head.hash };
  if (node !== undefined) base.node = node;
  if (e.recordingId !== undefined) base.recordingId = clip(e.recordingId);
  if (e.reason !== undefined) base.reason = clip(e.reason);
  if (e.details !== undefined) base.details = { ...e.details };
  return { ...base, hash: auditHash(base) };
}

export class ChainCheck {
  private expectSeq = 1;
  private prevHash = GENESIS_HASH;
  private count = 0;

  /** The next stored entry under `key`; a verdict when the chain breaks here, else null. */
  next(key: unknown, value: AuditEntry | undefined | null): AuditVerdict | null {
    const expectSeq = this.expectSeq;
    if (typeof key !== 'number' || !value || typeof value !== 'object') {
      return { ok: false, at: expectSeq, problem: `an unreadable record sits where entry ${expectSeq} should be` };
    }
    if (key !== expectSeq || value.seq !== key) {
      const at = Math.min(key, expectSeq);
      return key > expectSeq
        ? { ok: false, at, problem: `entries ${expectSeq}..${key - 1} are missing (deleted)` }
        : { ok: false, at: key, problem: `entry stored under ${key} claims sequence ${value.seq}` };
    }
    if (value.prevHash !== this.prevHash) {
      return { ok: false, at: key, problem: `entry ${key} does not chain to entry ${key - 1} (its prevHash differs)` };
    }
    const { hash, ...rest } = value;
    if (auditHash(rest) !== hash) {
      return { ok: false, at: key, problem: `entry ${key} was altered (its content no longer matches its hash)` };
    }
    this.prevHash = hash;
    this.expectSeq++;
    this.count++;
    return null;
  }

  /** After the last entry: checks the head record against the tail. */
  finish(head: ChainHead | undefined): AuditVerdict {
    const lastSeq = this.expectSeq - 1;
    if (head === undefined) {
      return this.count === 0 ? { ok: true, entries: 0 } : { ok: false, at: lastSeq, problem: 'the head record of the log is missing' };
    }
    if (head.seq > lastSeq) {
      return { ok: false, at: lastSeq + 1, problem: `entries ${lastSeq + 1}..${head.seq} are missing from the end of the log (deleted)` };
    }
    if (head.seq !== lastSeq || head.hash !== this.prevHash) {
      return { ok: false, at: lastSeq, problem: `the head record (entry ${head.seq}) does not match the last entry ${lastSeq}` };
    }
    return { ok: true, entries: this.count };
  }
}
