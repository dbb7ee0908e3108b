/**
 * Leases on spools, kept in the register: a spool is finalised only by the process holding
 * its lease, so the daemon's recovery at start-up and `tallenne recover` on another node
 * given the same spool volume never make two recordings of one spool. The daemon takes the
 * lease of each call when it is answered and renews every lease it holds until the
 * recording is stored, all of them in one write per renewal (a third of `ttlMs`), whatever
 * the number of live calls; a dead node's leases run out after `ttlMs`.
 */
import type { Logger } from '../log.js';
import type { RecordingIndex } from '../index/index.js';

export const SPOOL_LEASE_TTL_MS = 30_000;

export function spoolLeaseName(id: string): string {
  return `spool:${id}`;
}

export class SpoolLeases {
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;

  /**
   * `holder` names this process to the register: the daemon uses its `[cluster] node_id`
   * (so at a restart it takes its own spools back at once), a recover run a name of its own.
   */
  constructor(
    private readonly register: Pick<RecordingIndex, 'claimLease' | 'renewLeases' | 'releaseLease'>,
    readonly holder: string,
    private readonly log: Logger,
    private readonly ttlMs = SPOOL_LEASE_TTL_MS,
  ) {}

  /** Takes (or renews) the lease of spool `id`; false while another holder has it. */
  async claim(id: string): Promise<boolean> {
    const ok = await this.register.claimLease(spoolLeaseName(id), this.holder, this.ttlMs);
    if (ok) {
      this.held.add(id);
      this.startRenewing();
    }
    return ok;
  }

  /** Gives the lease of spool `id` back (its recording is stored, or this process lets it go). */
  async release(id: string): Promise<void> {
    if (!this.held.delete(id)) return;
    await this.register.releaseLease(spoolLeaseName(id), this.holder);
  }

  /** Stops renewing and gives back every lease still held, so another process can take those spools at once. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    for (const id of [...this.held]) await this.release(id).catch((e: unknown) => this.log.warn({ recording: id, err: (e as Error).message }, 'could not give back a spool lease; it runs out by itself'));
  }

  private startRenewing(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.renewing) return;
      this.renewing = this.renew().finally(() => {
        this.renewing = undefined;
      });
    }, Math.max(1, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const ids = [...this.held];
    if (ids.length === 0) return;
    let renewed: Set<string>;
    try {
      renewed = await this.register.renewLeases(ids.map(spoolLeaseName), this.holder, this.ttlMs);
    } catch (e) {
      this.log.warn({ leases: ids.length, err: (e as Error).message }, 'could not renew the spool leases; trying again');
      return;
    }
    for (const id of ids) {
      // Given back while the renewal ran: not lost.
      if (renewed.has(spoolLeaseName(id)) || !this.held.has(id)) continue;
      this.held.delete(id);
      this.log.error({ recording: id }, 'another process took the lease of this spool (this one stalled past its lease)');
    }
  }
}
