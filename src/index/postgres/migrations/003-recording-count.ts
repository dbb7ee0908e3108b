/**
 * Migration 3: the number of recordings, kept beside the table so that `count()` (asked at
 * every metrics scrape, by every node) reads a few rows instead of counting a million.
 *
 * Statement triggers add the rows each INSERT (an upsert's new rows only: its updated ones
 * are in its UPDATE, which does not count) and DELETE changed, in the same transaction, so
 * the sum is exact in every snapshot. The count is spread over 16 slots, each writer adding
 * to the slot of its server process: writers on different connections seldom wait for one
 * another's commit. A TRUNCATE empties the slots. The first value is counted here, while
 * CREATE TRIGGER's table lock holds writers off.
 */
export const name = 'recording-count';

export const sql = `
CREATE TABLE recording_count (
  slot smallint PRIMARY KEY,
  n bigint NOT NULL
);

CREATE FUNCTION recording_count_add(delta bigint) RETURNS void LANGUAGE sql AS $$
  INSERT INTO recording_count AS c (slot, n) VALUES (pg_backend_pid() % 16, delta)
  ON CONFLICT (slot) DO UPDATE SET n = c.n + EXCLUDED.n
$$;

CREATE FUNCTION recording_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k bigint;
BEGIN
  SELECT count(*) INTO k FROM inserted;
  IF k > 0 THEN PERFORM recording_count_add(k); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION recording_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE k bigint;
BEGIN
  SELECT count(*) INTO k FROM deleted;
  IF k > 0 THEN PERFORM recording_count_add(-k); END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION recording_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM recording_count;
  RETURN NULL;
END $$;

CREATE TRIGGER recordings_count_insert AFTER INSERT ON recordings
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION recording_count_inserted();
CREATE TRIGGER recordings_count_delete AFTER DELETE ON recordings
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION recording_count_deleted();
CREATE TRIGGER recordings_count_truncate AFTER TRUNCATE ON recordings
  FOR EACH STATEMENT EXECUTE FUNCTION recording_count_truncated();

INSERT INTO recording_count (slot, n) SELECT 0, count(*) FROM recordings;
`;
