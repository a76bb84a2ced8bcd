-- tidings_abandon: a gateway makes the outcome of one of its jobs definitive (issue 12: an
-- error reply means never committed). It locks the job's stream row in ingest_streams, the
-- same row tidings_commit (0002) and src/db/repos/streams.ts `claimTurn` lock first, so it
-- waits for a worker's transaction in progress, and then exactly one of two things holds:
--
--   the job was decided (p_seq <= last_seq): it committed, or its turn passed without it.
--     Nothing changes; what it committed is found below.
--   the job was not decided: last_seq moves to p_seq, so this job, and any earlier job of
--     the stream still undecided, will never commit (a worker that runs it later finds its
--     turn passed and inserts nothing). "cancelled" is true on every row.
--
-- Either way it answers one row per id, from tidings_committed: committed or not, and at
-- what offset of what epoch. Calling it again for the same job gives the same answer.
--
-- tidings_committed: the read-only half: which of these publications are committed, found
-- as tidings_commit finds a re-run's: by id in publications or removed_publications (after
-- history_remove), else by (channel, idempotency key) on the channel. The epoch is the
-- channel's (a channel keeps its epoch). p_channel and p_key may be NULL (ids only).
CREATE OR REPLACE FUNCTION tidings_committed(p_id uuid[], p_channel text[] DEFAULT NULL, p_key text[] DEFAULT NULL)
RETURNS TABLE (id uuid, committed boolean, "offset" bigint, epoch text)
LANGUAGE sql STABLE AS $$
  SELECT w.id, f.off IS NOT NULL, f.off, c.epoch
    FROM unnest(p_id, coalesce(p_channel, array_fill(NULL::text, ARRAY[cardinality(p_id)])),
                coalesce(p_key, array_fill(NULL::text, ARRAY[cardinality(p_id)]))) AS w(id, channel, key)
    LEFT JOIN LATERAL (
      SELECT x.channel, x.off FROM (
        SELECT p.channel, p."offset" AS off, 1 AS rank FROM publications p WHERE p.id = w.id
        UNION ALL
        SELECT r.channel, r."offset", 1 FROM removed_publications r WHERE r.id = w.id
        UNION ALL
        SELECT p.channel, p."offset", 2 FROM publications p
         WHERE w.key IS NOT NULL AND p.channel = w.channel AND p.idempotency_key = w.key
        UNION ALL
        SELECT r.channel, r."offset", 2 FROM removed_publications r
         WHERE w.key IS NOT NULL AND r.channel = w.channel AND r.idempotency_key = w.key
      ) x ORDER BY x.rank LIMIT 1
    ) f ON true
    LEFT JOIN channels c ON c.name = f.channel;
$$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION tidings_abandon(
  p_stream text, p_seq bigint, p_id uuid[], p_channel text[] DEFAULT NULL, p_key text[] DEFAULT NULL
) RETURNS TABLE (id uuid, committed boolean, "offset" bigint, epoch text, cancelled boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_last bigint;
  v_cancelled boolean := false;
BEGIN
  INSERT INTO ingest_streams AS s (stream) VALUES (p_stream)
    ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream
    RETURNING s.last_seq INTO v_last;
  IF p_seq > v_last THEN
    UPDATE ingest_streams SET last_seq = p_seq, updated_at = now() WHERE stream = p_stream;
    v_cancelled := true;
  END IF;
  RETURN QUERY SELECT t.id, t.committed, t."offset", t.epoch, v_cancelled FROM tidings_committed(p_id, p_channel, p_key) t;
END;
$$;
