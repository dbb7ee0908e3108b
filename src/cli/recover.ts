/**
 * `tallenne recover --spool-dir DIR`: finalises the spools another node left on a shared
 * spool volume (the node died mid-call, or is gone for good) into recordings in this
 * register, with the finaliser the daemon's own start-up recovery uses. Each spool is taken
 * under its lease in the register first: a spool whose lease is held (a live call of a
 * running node, which renews its leases, or another recover run) is left alone, so no spool
 * is finalised twice. Spools of calls never answered are left to their own node.
 * Exit 0 when every spool taken was stored, 1 when any failed (it stays for a later run).
 */
import { existsSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { Finaliser } from '../calls/finaliser.js';
import { SpoolLeases } from '../calls/spool-leases.js';
import { keyringFor } from '../crypto/keyring.js';
import { EncoderPool, encoderWorkerCount } from '../encoder/pool.js';
import { createLogger } from '../log.js';
import { flagString, parseArgs, type CliContext } from './context.js';
import { UsageError, withRegister } from './register.js';

const USAGE = `usage: tallenne recover --spool-dir DIR [--json]
  finalise the spools another node left in DIR (a shared spool volume) into recordings;
  spools leased by a running node or another recover run are left alone
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, ['json', 'help']);
  if (args.flags.has('help') || argv[0] === 'help') {
    ctx.out(USAGE);
    return 0;
  }
  return withRegister(ctx, async (r) => {
    const dirFlag = flagString(args, 'spool-dir');
    if (dirFlag === undefined || dirFlag.trim() === '') throw new UsageError(`--spool-dir is required\n${USAGE}`);
    const spoolDir = resolve(dirFlag);
    if (!existsSync(spoolDir) || !statSync(spoolDir).isDirectory()) throw new UsageError(`--spool-dir ${spoolDir} is not a folder`);
    const c = r.config;
    // Log lines go to stderr; stdout carries the report.
    const log = createLogger(c.log.level, process.stderr).child({ component: 'recover' });
    const keyring = keyringFor(c.encryption, { create: false });
    const leases = new SpoolLeases(r.index, `${c.cluster.node_id}:recover:${process.pid}:${randomBytes(4).toString('hex')}`, log);
    const encoder = new EncoderPool({ workers: encoderWorkerCount(c.encoder.workers) });
    const finaliser = new Finaliser({
      config: () => c,
      log,
      encoder,
      index: r.index,
      store: r.store,
      spoolDir,
      keys: c.encryption.enabled ? keyring : null,
      ...(keyring ? { spoolKeys: keyring } : {}),
      leases,
    });
    // One pass: a spool that fails stays, under no lease, for a later run or its own node.
    finaliser.stopRetrying();
    const stored: string[] = [];
    const failed: Array<{ id: string; message: string }> = [];
    finaliser.on('recorded', (entry) => stored.push(entry.id));
    finaliser.on('failed', (id, err) => failed.push({ id, message: err.message }));
    try {
      const found = await finaliser.recoverSpools({ deleteUnanswered: false });
      await finaliser.settled();
      const report = { stored, failed, leasedElsewhere: found.leasedElsewhere, unanswered: found.unanswered };
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        ctx.out(`stored ${stored.length} recording(s) from ${spoolDir}\n`);
        for (const id of stored) ctx.out(`  stored  ${id}\n`);
        if (found.leasedElsewhere > 0) ctx.out(`left ${found.leasedElsewhere} spool(s) another process holds (a live call, or another recover run)\n`);
        if (found.unanswered > 0) ctx.out(`left ${found.unanswered} spool(s) of calls not answered (their own node deletes them)\n`);
      }
      for (const f of failed) ctx.err(`error: spool ${f.id}: ${f.message}\n`);
      return failed.length > 0 ? 1 : 0;
    } finally {
      finaliser.close();
      await leases.close();
      await encoder.close();
    }
  });
}
