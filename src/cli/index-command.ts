/**
 * `tallenne index ...`: administration of a PostgreSQL register. `migrate` brings its schema
 * to this version (safe from several nodes at once); `copy` moves a site's LMDB index into
 * it (resumable). Neither ever prints the URL's password.
 */
import type { CliContext } from './context.js';
import { reportError, UsageError } from './register.js';
import { indexUrl, redactUrl } from '../index/postgres/url.js';
import { migratePostgres } from '../index/postgres/open.js';

const USAGE = `usage: tallenne index <command>
  migrate                                      apply the PostgreSQL register's schema migrations
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
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(sub === undefined ? USAGE : `error: unknown command "index ${sub}"\n${USAGE}`);
  return 2;
}


