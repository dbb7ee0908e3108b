/**
 * `tallenne audit ...`: read the audit log (`list`) and check its hash chain (`verify`,
 * exit 0 when intact, 1 with the first broken entry when not).
 */
import type { ErrorCode } from '../errors.js';
import type { AuditLog } from '../index/index.js';
import { parseArgs, flagString, type CliContext } from './context.js';
import { positiveInt, UsageError, withRegister } from './register.js';

const USAGE = `usage: tallenne audit <command>
  list [--after SEQ] [--limit N] [--json]   entries in order, oldest first
  verify                                    check the whole hash chain (every node's entries); exit 1
                                            and say where it breaks; show how many entries each node wrote
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['json']);
  if (sub === 'list') {
    return withRegister(ctx, async (r) => {
      const afterText = flagString(args, 'after');
      if (afterText !== undefined && !/^\d+$/.test(afterText)) throw new UsageError('--after must be an entry number');
      const after = afterText === undefined ? 0 : Number(afterText);
      const limit = positiveInt(flagString(args, 'limit'), 'limit', 100, 100_000);
      const entries = await r.index.audit.list({ after, limit });
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(entries, null, 2)}\n`);
      else {
        for (const e of entries) {
          const details = e.details ? ` ${Object.entries(e.details).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
          ctx.out(`${String(e.seq).padStart(6)}  ${e.at}  ${e.node ?? '-'}  ${e.actor}  ${e.action}${e.recordingId ? ` ${e.recordingId}` : ''}${e.reason ? ` "${e.reason}"` : ''}${details}\n`);
        }
      }
      return 0;
    });
  }
  if (sub === 'verify') {
    return withRegister(ctx, async (r) => {
      const v = await r.index.audit.verify();
      if (v.ok) {
        ctx.out(`audit log intact: ${v.entries} entr${v.entries === 1 ? 'y' : 'ies'}\n`);
        for (const [node, n] of await entriesPerNode(r.index.audit)) ctx.out(`  ${node}: ${n}\n`);
        return 0;
      }
      ctx.out(`audit log BROKEN at entry ${v.at}: ${v.problem} (${'TALLENNE_AUDIT_BROKEN' satisfies ErrorCode})\n`);
      return 1;
    });
  }
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(sub === undefined ? USAGE : `error: unknown command "audit ${sub}"\n${USAGE}`);
  return 2;
}

/** Entries each node wrote, by node name; entries from before nodes were recorded under "(no node)". */
async function entriesPerNode(log: AuditLog): Promise<Array<[string, number]>> {
  const counts = new Map<string, number>();
  let after = 0;
  for (;;) {
    const page = await log.list({ after, limit: 10_000 });
    for (const e of page) counts.set(e.node ?? '(no node)', (counts.get(e.node ?? '(no node)') ?? 0) + 1);
    if (page.length < 10_000) break;
    after = page.at(-1)!.seq;
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}
