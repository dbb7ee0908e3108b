/**
 * The register conformance suite against PostgreSQL: one throwaway server for the file, a
 * fresh migrated database per test.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { migratePostgres, openPostgresIndex } from '../../src/index/postgres/open.js';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../support/postgres.js';
import { describeIndexConformance } from './index-conformance.js';

describe.skipIf(!postgresInstalled())('PostgreSQL register', () => {
  let server: PostgresHandle | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describeIndexConformance('postgres', async ({ nodeId }) => {
    const url = await server!.createDatabase();
    await migratePostgres(url);
    const index = await openPostgresIndex({ url, poolSize: 8, node: nodeId });
    return { index, close: () => index.close() };
  });
});
