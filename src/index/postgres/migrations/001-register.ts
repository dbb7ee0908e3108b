/**
 * Migration 1: the register's tables. A recording is kept whole as JSON; the columns beside
 * it are what the queries look up (byte order, as in LMDB), each with the index that serves it newest first (the
 * same lookups as the LMDB key ranges of src/index/keys.ts).
 */
export const name = 'register';

export const sql = `
CREATE TABLE recordings (
  id text COLLATE "C" PRIMARY KEY,
  start_ms bigint NOT NULL,
  number_hash text COLLATE "C",
  group_id text COLLATE "C",
  agent_id text COLLATE "C",
  service_number text COLLATE "C",
  team text COLLATE "C",
  status text COLLATE "C",
  audio_expiry bigint,
  metadata_expiry bigint,
  data_key_id text COLLATE "C",
  entry json NOT NULL
);
CREATE INDEX recordings_time ON recordings (start_ms DESC, id DESC);
CREATE INDEX recordings_number_hash ON recordings (number_hash, start_ms DESC, id DESC) WHERE number_hash IS NOT NULL;
CREATE INDEX recordings_group ON recordings (group_id, start_ms DESC, id DESC) WHERE group_id IS NOT NULL;
CREATE INDEX recordings_agent ON recordings (agent_id, start_ms DESC, id DESC) WHERE agent_id IS NOT NULL;
CREATE INDEX recordings_service ON recordings (service_number, start_ms DESC, id DESC) WHERE service_number IS NOT NULL;
CREATE INDEX recordings_team ON recordings (team, start_ms DESC, id DESC) WHERE team IS NOT NULL;
CREATE INDEX recordings_status ON recordings (status, start_ms DESC, id DESC) WHERE status IS NOT NULL;
CREATE INDEX recordings_audio_expiry ON recordings (audio_expiry, id) WHERE audio_expiry IS NOT NULL;
CREATE INDEX recordings_metadata_expiry ON recordings (metadata_expiry, id) WHERE metadata_expiry IS NOT NULL;
CREATE INDEX recordings_data_key ON recordings (data_key_id, id) WHERE data_key_id IS NOT NULL;

CREATE TABLE intents (
  id text PRIMARY KEY,
  intent json NOT NULL
);

CREATE TABLE marks (
  name text PRIMARY KEY,
  value json NOT NULL
);

CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  entry json NOT NULL
);
-- The chain's head: one row, locked by every append, so appends from every node queue on it.
CREATE TABLE audit_head (
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  hash text NOT NULL
);
INSERT INTO audit_head (one, seq, hash) VALUES (true, 0, repeat('0', 64));

CREATE TABLE users (
  name text PRIMARY KEY,
  record json NOT NULL
);
CREATE TABLE tokens (
  id text PRIMARY KEY,
  user_name text NOT NULL,
  record json NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_name);
`;
