/**
 * The audit chain's verification rules, apart from where the entries are kept: fed the
 * stored entries in key order and then the head record, it reports the first break (an
 * altered entry, a gap, an entry that does not chain, a missing tail) or the count. The LMDB
 * and the PostgreSQL audit logs both verify through it.
 */
import type { AuditEntry, AuditVerdict } from './audit.js';
import { GENESIS_HASH, auditHash } from './audit.js';

export interface ChainHead {
  seq: number;
  hash: string;
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
