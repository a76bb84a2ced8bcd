-- tidings_commit_many: several ingest jobs committed in one call, one transaction, one WAL
-- flush (group commit). A worker takes every job of its partitions that is waiting for a
-- commit and hands them over at once: at a few publications per job the per-transaction
-- cost (round trip, COMMIT, WAL flush), not the rows, is most of what a job costs.
--
-- Job j owns p_counts[j] consecutive publications of the p_* columns, in order. Each job is
-- committed exactly as tidings_commit (0002) commits one, in the order given (a stream's
-- jobs must come in seq order), and answers the same rows with its index in "job". A job
-- that finds an earlier job of its stream missing answers 'gap' and commits nothing; the
-- other jobs of the group commit all the same.
--
-- Every row this transaction will lock is locked first, in one fixed order (stream rows
-- by name, then channel rows by name), the order every other writer uses: two groups that
-- overlap (a partition changing owner) wait for each other instead of deadlocking.
CREATE OR REPLACE FUNCTION tidings_commit_many(
  p_streams text[], p_seqs bigint[], p_skips boolean[], p_counts int[],
  p_channel text[], p_id uuid[], p_data text[], p_user text[], p_client text[],
  p_conn_info text[], p_chan_info text[], p_tags text[], p_key text[], p_new_epoch text[]
) RETURNS TABLE (job int, kind text, id uuid, channel text, "offset" bigint, epoch text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  m int := coalesce(array_length(p_counts, 1), 0);
  v_from int := 1;
  v_to int;
  v_locked int;
BEGIN
  WITH locked AS (
    INSERT INTO ingest_streams AS s (stream)
    SELECT DISTINCT t.stream FROM unnest(p_streams) AS t(stream) WHERE t.stream IS NOT NULL ORDER BY 1
    ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream
    RETURNING s.stream
  ) SELECT count(*) INTO v_locked FROM locked;
  WITH locked AS (
    INSERT INTO channels AS ch (name, epoch)
    SELECT DISTINCT ON (t.name) t.name, t.epoch FROM unnest(p_channel, p_new_epoch) AS t(name, epoch)
    ORDER BY t.name
    ON CONFLICT (name) DO UPDATE SET name = excluded.name
    RETURNING ch.name
  ) SELECT count(*) INTO v_locked FROM locked;
  FOR j IN 1 .. m LOOP
    v_to := v_from + p_counts[j] - 1;
    RETURN QUERY SELECT j, r.kind, r.id, r.channel, r."offset", r.epoch FROM tidings_commit(
      p_streams[j], p_seqs[j], p_skips[j],
      p_channel[v_from:v_to], p_id[v_from:v_to], p_data[v_from:v_to], p_user[v_from:v_to], p_client[v_from:v_to],
      p_conn_info[v_from:v_to], p_chan_info[v_from:v_to], p_tags[v_from:v_to], p_key[v_from:v_to],
      p_new_epoch[v_from:v_to]) AS r;
    v_from := v_to + 1;
  END LOOP;
END;
$$;
