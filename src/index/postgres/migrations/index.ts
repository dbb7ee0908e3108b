/** The register's migrations in order: version N is MIGRATIONS[N - 1]. Never edit one that shipped; add the next. */
import * as m001 from './001-register.js';
import * as m002 from './002-leases.js';
import * as m003 from './003-recording-count.js';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [m001, m002, m003].map((m, i) => ({ version: i + 1, name: m.name, sql: m.sql }));

export const LATEST_VERSION = MIGRATIONS.length;
