-- tidings_commit: one ingest job's commit in one call, so the worker pays one round trip
-- (the call runs as its own transaction) instead of BEGIN, claim, lock, look-ups, insert
-- and COMMIT. It does exactly what src/db/repos/publications.ts `commitPublications` and
-- src/db/repos/streams.ts `claimTurn` do, in the same order (stream row, then channel rows
-- in name order), and answers one row per publication plus one per channel:
--
--   kind 'gap'       (alone) an earlier job of the stream is missing; "offset" = last_seq
--   kind 'new'       inserted now at "offset"
--   kind 'id'        stored before under this id (a re-run job): deliver again at "offset"
--   kind 'key'       its idempotency key was used before on the channel: first "offset"
--   kind 'rejected'  the job's turn passed and it was not stored: never committed
--   kind 'top'       a channel of the batch, its epoch and its top offset after the batch
--
-- p_stream NULL is a job from a gateway that predates streams: ids and keys deduplicate.
-- A data error (NUL, index row too big) fails the call; the worker then commits the batch
-- publication by publication under savepoints, from TypeScript.
CREATE OR REPLACE FUNCTION tidings_commit(
  p_stream text, p_seq bigint, p_skip boolean,
  p_channel text[], p_id uuid[], p_data text[], p_user text[], p_client text[],
  p_conn_info text[], p_chan_info text[], p_tags text[], p_key text[], p_new_epoch text[]
) RETURNS TABLE (kind text, id uuid, channel text, "offset" bigint, epoch text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  n int := coalesce(array_length(p_id, 1), 0);
  v_last bigint := 0;
  v_decided boolean := false;
  v_check_ids boolean := p_stream IS NULL;
  v_names text[]; v_epochs text[]; v_tops bigint[]; v_before bigint[];
  v_seen_ids uuid[]; v_seen_id_offsets bigint[];
  -- channel || E'\n' || key: a channel name never holds a newline, so the pair is unambiguous.
  v_keys text[] := '{}'; v_key_offsets bigint[] := '{}';
  v_kinds text[] := '{}'; v_offsets bigint[] := '{}';
  v_insert_at int[] := '{}'; v_insert_offsets bigint[] := '{}';
  v_earlier bigint; v_kind text; c int; k int;
BEGIN
  IF p_stream IS NOT NULL THEN
    INSERT INTO ingest_streams AS s (stream) VALUES (p_stream)
      ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream
      RETURNING s.last_seq INTO v_last;
    IF p_seq <= v_last THEN
      v_decided := true;
    ELSIF p_seq > v_last + 1 AND NOT p_skip THEN
      RETURN QUERY SELECT 'gap'::text, NULL::uuid, NULL::text, v_last, NULL::text;
      RETURN;
    END IF;
    -- A fresh turn cannot have committed before: its ids are new (no look-up needed).
    v_check_ids := v_decided OR v_last = 0;
  END IF;

  IF n > 0 THEN
    WITH locked AS (
      INSERT INTO channels AS ch (name, epoch)
      SELECT DISTINCT ON (t.name) t.name, t.epoch FROM unnest(p_channel, p_new_epoch) AS t(name, epoch)
      ORDER BY t.name
      ON CONFLICT (name) DO UPDATE SET name = excluded.name
      RETURNING ch.name, ch.epoch, ch.top_offset
    )
    SELECT array_agg(l.name ORDER BY l.name), array_agg(l.epoch ORDER BY l.name), array_agg(l.top_offset ORDER BY l.name)
      INTO v_names, v_epochs, v_tops FROM locked l;
    v_before := v_tops;

    IF v_check_ids THEN
      SELECT array_agg(x.id), array_agg(x.off) INTO v_seen_ids, v_seen_id_offsets FROM (
        SELECT p.id, p."offset" AS off FROM publications p WHERE p.id = ANY (p_id)
        UNION ALL
        SELECT r.id, r."offset" FROM removed_publications r WHERE r.id = ANY (p_id)
      ) x;
    END IF;

    IF EXISTS (SELECT 1 FROM unnest(p_key) AS u(key) WHERE u.key IS NOT NULL) THEN
      SELECT coalesce(array_agg(x.pair), '{}'), coalesce(array_agg(x.off), '{}') INTO v_keys, v_key_offsets FROM (
        SELECT p.channel || E'\n' || p.idempotency_key AS pair, p."offset" AS off
          FROM publications p JOIN unnest(p_channel, p_key) AS w(channel, key)
            ON p.channel = w.channel AND p.idempotency_key = w.key
        UNION ALL
        SELECT r.channel || E'\n' || r.idempotency_key, r."offset"
          FROM removed_publications r JOIN unnest(p_channel, p_key) AS w(channel, key)
            ON r.channel = w.channel AND r.idempotency_key = w.key
      ) x;
    END IF;

    FOR i IN 1 .. n LOOP
      c := array_position(v_names, p_channel[i]);
      v_earlier := NULL;
      v_kind := NULL;
      IF v_seen_ids IS NOT NULL THEN
        k := array_position(v_seen_ids, p_id[i]);
        IF k IS NOT NULL THEN v_earlier := v_seen_id_offsets[k]; v_kind := 'id'; END IF;
      END IF;
      IF v_earlier IS NULL AND p_key[i] IS NOT NULL THEN
        k := array_position(v_keys, p_channel[i] || E'\n' || p_key[i]);
        IF k IS NOT NULL THEN v_earlier := v_key_offsets[k]; v_kind := 'key'; END IF;
      END IF;
      IF v_earlier IS NULL THEN
        IF v_decided THEN
          v_kind := 'rejected';
        ELSE
          v_tops[c] := v_tops[c] + 1;
          v_earlier := v_tops[c];
          v_kind := 'new';
          v_insert_at := v_insert_at || i;
          v_insert_offsets := v_insert_offsets || v_earlier;
          IF p_key[i] IS NOT NULL THEN
            v_keys := v_keys || (p_channel[i] || E'\n' || p_key[i]);
            v_key_offsets := v_key_offsets || v_earlier;
          END IF;
        END IF;
      END IF;
      v_kinds := v_kinds || v_kind;
      v_offsets := v_offsets || v_earlier;
    END LOOP;

    INSERT INTO publications (channel, "offset", id, data, "user", client, conn_info, chan_info, tags, idempotency_key)
    SELECT p_channel[j], o, p_id[j], p_data[j], p_user[j], p_client[j], p_conn_info[j], p_chan_info[j], p_tags[j], p_key[j]
      FROM unnest(v_insert_at, v_insert_offsets) AS t(j, o);
    UPDATE channels SET top_offset = t.top
      FROM unnest(v_names, v_tops, v_before) AS t(name, top, before)
     WHERE channels.name = t.name AND t.top <> t.before;
  END IF;

  IF p_stream IS NOT NULL AND NOT v_decided THEN
    UPDATE ingest_streams SET last_seq = p_seq, updated_at = now() WHERE stream = p_stream;
  END IF;

  RETURN QUERY
    SELECT v_kinds[i], p_id[i], p_channel[i], v_offsets[i], v_epochs[array_position(v_names, p_channel[i])]
      FROM generate_series(1, n) AS i;
  RETURN QUERY
    SELECT 'top'::text, NULL::uuid, t.name, t.top, t.epoch FROM unnest(v_names, v_tops, v_epochs) AS t(name, top, epoch);
END;
$$;
