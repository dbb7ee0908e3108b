/**
 * `tallenne index ...`: administration of a PostgreSQL register. `migrate` brings its schema
 * to this version (safe from several nodes at once); `copy` moves a site's LMDB index into
 * it (resumable). Neither ever prints the URL's password.
 */
import { flagString, parseArgs, type CliContext, type ParsedArgs } from './context.js';
import { positiveInt, reportError, UsageError } from './register.js';
import { indexUrl, postgresUrlProblem, redactUrl } from '../index/postgres/url.js';
import { migratePostgres, withMigratedDb } from '../index/postgres/open.js';
import { openIndex } from '../index/index.js';
import { copyIndex } from '../index/postgres/copy.js';

const USAGE = `usage: tallenne index <command>
  migrate                                      apply the PostgreSQL register's schema migrations
  copy --from lmdb:DIR --to postgres[:URL] [--batch N]
                                               copy the LMDB index of storage dir DIR into the
                                               (migrated, empty) register; without URL the
                                               config's [index] url / url_file; resumable
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub] = argv;
  if (sub === 'migrate') {
    try {
      const c = ctx.loaded.config.index;
      if (c.backend !== 'postgres') throw new UsageError('index.backend is "lmdb": the embedded index migrates itself when opened');
      const url = indexUrl(c);
      const r = await migratePostgres(url);
      for (const m of r.applied) ctx.out(`applied ${String(m.version).padStart(3, '0')} ${m.name}\n`);
      ctx.out(r.applied.length === 0 ? `already at schema version ${r.to}: ${redactUrl(url)}\n` : `now at schema version ${r.to}: ${redactUrl(url)}\n`);
      return 0;
    } catch (e) {
      return reportError(ctx, e);
    }
  }
  if (sub === 'copy') {
    try {
      return await copy(parseArgs(argv.slice(1)), ctx);
    } catch (e) {
      return reportError(ctx, e);
    }
  }
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(sub === undefined ? USAGE : `error: unknown command "index ${sub}"\n${USAGE}`);
  return 2;
}



async function copy(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const from = flagString(args, 'from');
  const to = flagString(args, 'to');
  if (from === undefined || !from.startsWith('lmdb:') || from.length === 5) throw new UsageError('--from lmdb:DIR (the storage dir holding index/)');
  if (to === undefined || !(to === 'postgres' || to.startsWith('postgres:'))) throw new UsageError('--to postgres:URL, or --to postgres for the config\'s [index] url / url_file');
  const dir = from.slice(5);
  let url: string;
  if (to === 'postgres') url = indexUrl(ctx.loaded.config.index);
  else {
    url = to.slice('postgres:'.length);
    const problem = postgresUrlProblem(url);
    if (problem !== undefined) throw new UsageError(`--to: the URL ${problem}`);
  }
  const batch = positiveInt(flagString(args, 'batch'), 'batch', 500, 10_000);
  const source = await openIndex(dir);
  try {
    const report = await withMigratedDb(url, (db) => copyIndex(source, db, { sourceName: `lmdb:${dir}`, batch }));
    ctx.out(`${report.resumed ? 'resumed and finished' : 'copied'} lmdb:${dir} into ${redactUrl(url)}\n`);
    ctx.out(`  recordings     ${report.recordings.target} (source ${report.recordings.source})\n`);
    ctx.out(`  audit entries  ${report.auditEntries.target} (source ${report.auditEntries.source})\n`);
    ctx.out(`  users          ${report.users.target} (source ${report.users.source})\n`);
    ctx.out(`  intents        ${report.intents}\n`);
    ctx.out('counts match\n');
    return 0;
  } finally {
    await source.close();
  }
}
