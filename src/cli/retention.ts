/**
 * `tallenne retention ...`: run the purge now (`run [--dry-run]`), or compare the audio store
 * with the index (`sweep-orphans [--remove] [--repair] [--grace DURATION]`). Safe while the
 * daemon runs: destruction goes through committed intents in the shared index.
 */
import { parseArgs, flagString, type CliContext } from './context.js';
import { actorOf, UsageError, withRegister } from './register.js';
import { parseDuration, durationMs } from '../config/duration.js';
import { Purger } from '../retention/purge.js';

const USAGE = `usage: tallenne retention <command>
  run [--dry-run] [--json] [--actor NAME]        destroy what has expired now
  sweep-orphans [--remove] [--repair] [--grace DURATION] [--json] [--actor NAME]
                                                  files without entries, entries without files
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['dry-run', 'json', 'remove', 'repair']);
  if (sub === 'run') {
    return withRegister(ctx, async (r) => {
      const purger = new Purger({ index: r.index, store: r.store, ...(r.purgeLock ? { lock: r.purgeLock } : {}) });
      const report = await purger.runOnce({ dryRun: args.flags.has('dry-run'), actor: actorOf(args) });
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(report, null, 2)}\n`);
      else if (report.busyElsewhere) ctx.out('another node is running a purge pass on the shared register; nothing done here\n');
      else {
        const verb = report.dryRun ? 'would destroy' : 'destroyed';
        ctx.out(`${verb}: audio of ${report.audio.length} recording(s), ${report.metadata.length} recording(s) entirely\n`);
        for (const id of report.audio) ctx.out(`  audio      ${id}\n`);
        for (const id of report.metadata) ctx.out(`  recording  ${id}\n`);
        if (report.resumed.length > 0) ctx.out(`${report.dryRun ? 'would complete' : 'completed'} ${report.resumed.length} interrupted destruction(s)\n`);
        if (report.leasesRemoved > 0) ctx.out(`deleted ${report.leasesRemoved} lease(s) of the register that ran out long ago\n`);
        if (report.truncated) ctx.out('(the list is cut at 10,000 of each kind)\n');
      }
      for (const e of report.errors) ctx.err(`error: recording ${e.id}: ${e.message}\n`);
      return report.errors.length > 0 ? 1 : 0;
    });
  }
  if (sub === 'sweep-orphans') {
    return withRegister(ctx, async (r) => {
      const graceText = flagString(args, 'grace');
      let graceMs: number | undefined;
      if (graceText !== undefined) {
        const d = parseDuration(graceText);
        if (typeof d === 'string') throw new UsageError(`--grace: ${d}`);
        graceMs = durationMs(d);
      }
      const purger = new Purger({ index: r.index, store: r.store });
      const report = await purger.sweepOrphans({
        remove: args.flags.has('remove'),
        repair: args.flags.has('repair'),
        actor: actorOf(args),
        ...(graceMs !== undefined ? { graceMs } : {}),
      });
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        for (const f of report.orphanFiles) ctx.out(`orphan file     ${f}\n`);
        for (const f of report.recentOrphanFiles) ctx.out(`recent file     ${f} (no entry yet; left alone)\n`);
        for (const id of report.missingFiles) ctx.out(`missing audio   ${id}\n`);
        ctx.out(`${report.orphanFiles.length} orphan file(s), ${report.missingFiles.length} entr(y/ies) without audio; removed ${report.removedFiles}, repaired ${report.repairedEntries}\n`);
      }
      return 0;
    });
  }
  if (sub === undefined) {
    ctx.err(USAGE);
    return 2;
  }
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(`error: unknown command "retention ${sub}"\n${USAGE}`);
  return 2;
}
