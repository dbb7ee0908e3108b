/**
 * Migration 2: leases (one spool finalised by one node only). Expiry is on the database
 * server's clock, the one clock every node shares.
 */
export const name = 'leases';

export const sql = `
CREATE TABLE leases (
  name text COLLATE "C" PRIMARY KEY,
  holder text NOT NULL,
  expires_ms bigint NOT NULL
);
`;
