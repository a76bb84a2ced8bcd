-- tidings_commit_many, in one pass: the same decisions as 0004 (which called tidings_commit
-- once per job), made in memory for the whole group, then one INSERT of the new
-- publications, one UPDATE of the channels and one of the streams. 0004 ran about ten
-- statements per job; at a few publications per job those statements, not the rows, were
-- most of PostgreSQL's time.
--
-- What each job gets is unchanged (see 0002 for the kinds): its turn in its stream (a later
-- job of a stream in the same group sees the earlier one committed), ids and idempotency
-- keys stored before (including by an earlier job of the group), contiguous offsets per
-- channel in job order, and after its publications one 'top' row per channel it touched,
-- with the channel's top after that job.
--
-- Rows are created and locked as in 0004 (ON CONFLICT DO UPDATE, stream rows by name, then
-- channel rows by name, the order every writer uses), but once per group instead of once
-- more per job. (Locking with SELECT ... FOR UPDATE after an INSERT ... ON CONFLICT DO
-- NOTHING writes fewer row versions, and cost the same for a group of jobs but a quarter
-- more for a group of one: two statements more.)
CREATE OR REPLACE FUNCTION tidings_commit_many(
  p_streams text[], p_seqs bigint[], p_skips boolean[], p_counts int[],
  p_channel text[], p_id uuid[], p_data text[], p_user text[], p_client text[],
  p_conn_info text[], p_chan_info text[], p_tags text[], p_key text[], p_new_epoch text[]
) RETURNS TABLE (job int, kind text, id uuid, channel text, "offset" bigint, epoch text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  m int := coalesce(array_length(p_counts, 1), 0);
  -- Streams in name order: their last_seq, moved forward in memory as jobs take their turn.
  v_streams text[]; v_last bigint[]; v_last_before bigint[];
  -- Per job: 'gap', 'decided' (its turn passed: re-run), 'next'; and whether its ids may be stored already.
  v_state text[] := '{}'; v_check boolean[] := '{}'; v_last_check int := 0;
  -- Channels in name order, and each publication's index among them.
  v_names text[]; v_epochs text[]; v_tops bigint[]; v_before bigint[]; v_cidx int[]; v_mark int[];
  v_seen_ids uuid[] := '{}'; v_seen_id_offsets bigint[] := '{}';
  -- channel || E'\n' || key: a channel name never holds a newline, so the pair is unambiguous.
  v_keys text[] := '{}'; v_key_offsets bigint[] := '{}';
  v_insert_at int[] := '{}'; v_insert_offsets bigint[] := '{}';
  o_job int[] := '{}'; o_kind text[] := '{}'; o_id uuid[] := '{}'; o_channel text[] := '{}';
  o_offset bigint[] := '{}'; o_epoch text[] := '{}';
  v_from int := 1; v_to int; s int; c int; k int; v_earlier bigint; v_kind text;
BEGIN
  -- Creates what is missing and locks every row in one statement each (an ON CONFLICT DO
  -- UPDATE locks the conflicting rows, in the statement's order: by name).
  WITH locked AS (
    INSERT INTO ingest_streams AS st (stream)
    SELECT DISTINCT t.stream FROM unnest(p_streams) AS t(stream) WHERE t.stream IS NOT NULL ORDER BY 1
    ON CONFLICT (stream) DO UPDATE SET stream = excluded.stream
    RETURNING st.stream, st.last_seq
  )
  SELECT coalesce(array_agg(l.stream ORDER BY l.stream), '{}'), coalesce(array_agg(l.last_seq ORDER BY l.stream), '{}')
    INTO v_streams, v_last FROM locked l;
  v_last_before := v_last;

  WITH locked AS (
    INSERT INTO channels AS ch (name, epoch)
    SELECT DISTINCT ON (t.name) t.name, t.epoch FROM unnest(p_channel, p_new_epoch) AS t(name, epoch)
    ORDER BY t.name
    ON CONFLICT (name) DO UPDATE SET name = excluded.name
    RETURNING ch.name, ch.epoch, ch.top_offset
  )
  SELECT coalesce(array_agg(l.name ORDER BY l.name), '{}'), coalesce(array_agg(l.epoch ORDER BY l.name), '{}'),
         coalesce(array_agg(l.top_offset ORDER BY l.name), '{}')
    INTO v_names, v_epochs, v_tops FROM locked l;
  v_before := v_tops;
  v_mark := array_fill(0, ARRAY[greatest(array_length(v_names, 1), 1)]);
  IF array_length(p_channel, 1) <= 32 THEN
    -- Few publications: finding each one's channel in the sorted names is cheaper than a join.
    v_cidx := '{}';
    FOR i IN 1 .. coalesce(array_length(p_channel, 1), 0) LOOP
      v_cidx := v_cidx || array_position(v_names, p_channel[i]);
    END LOOP;
  ELSE
    SELECT coalesce(array_agg(nm.idx ORDER BY pc.ord), '{}') INTO v_cidx
      FROM unnest(p_channel) WITH ORDINALITY AS pc(name, ord)
      JOIN unnest(v_names) WITH ORDINALITY AS nm(name, idx) ON nm.name = pc.name;
  END IF;

  -- Each job's turn, in the order given (a stream's jobs come in seq order).
  FOR j IN 1 .. m LOOP
    IF p_streams[j] IS NULL THEN
      v_state := v_state || 'next'::text;
      v_check := v_check || true;
    ELSE
      s := array_position(v_streams, p_streams[j]);
      IF p_seqs[j] <= v_last[s] THEN
        v_state := v_state || 'decided'::text;
        v_check := v_check || true;
      ELSIF p_seqs[j] > v_last[s] + 1 AND NOT p_skips[j] THEN
        v_state := v_state || 'gap'::text;
        v_check := v_check || false;
      ELSE
        -- A fresh turn cannot have committed before, unless it is the stream's first.
        v_state := v_state || 'next'::text;
        v_check := v_check || (v_last[s] = 0);
        v_last[s] := p_seqs[j];
      END IF;
    END IF;
    IF v_check[j] THEN v_last_check := j; END IF;
  END LOOP;

  IF v_last_check > 0 THEN
    SELECT coalesce(array_agg(x.id), '{}'), coalesce(array_agg(x.off), '{}') INTO v_seen_ids, v_seen_id_offsets FROM (
      SELECT p.id, p."offset" AS off FROM publications p WHERE p.id = ANY (p_id)
      UNION ALL
      SELECT r.id, r."offset" FROM removed_publications r WHERE r.id = ANY (p_id)
    ) x;
  END IF;

  IF cardinality(array_remove(p_key, NULL)) > 0 THEN
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

  FOR j IN 1 .. m LOOP
    v_to := v_from + p_counts[j] - 1;
    IF v_state[j] = 'gap' THEN
      -- "offset": the stream's last committed seq (as far as this group got), as in 0002.
      s := array_position(v_streams, p_streams[j]);
      o_job := o_job || j; o_kind := o_kind || 'gap'::text; o_id := o_id || NULL::uuid;
      o_channel := o_channel || NULL::text; o_offset := o_offset || v_last[s]; o_epoch := o_epoch || NULL::text;
    ELSE
      FOR i IN v_from .. v_to LOOP
        c := v_cidx[i];
        v_earlier := NULL;
        v_kind := NULL;
        IF v_check[j] THEN
          k := array_position(v_seen_ids, p_id[i]);
          IF k IS NOT NULL THEN v_earlier := v_seen_id_offsets[k]; v_kind := 'id'; END IF;
        END IF;
        IF v_earlier IS NULL AND p_key[i] IS NOT NULL THEN
          k := array_position(v_keys, p_channel[i] || E'\n' || p_key[i]);
          IF k IS NOT NULL THEN v_earlier := v_key_offsets[k]; v_kind := 'key'; END IF;
        END IF;
        IF v_earlier IS NULL THEN
          IF v_state[j] = 'decided' THEN
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
            -- A later job of the group that may be a re-run must find this one stored.
            IF j < v_last_check THEN
              v_seen_ids := v_seen_ids || p_id[i];
              v_seen_id_offsets := v_seen_id_offsets || v_earlier;
            END IF;
          END IF;
        END IF;
        o_job := o_job || j; o_kind := o_kind || v_kind; o_id := o_id || p_id[i];
        o_channel := o_channel || p_channel[i]; o_offset := o_offset || v_earlier; o_epoch := o_epoch || v_epochs[c];
      END LOOP;
      -- The job's channels and their tops after it, once each.
      FOR i IN v_from .. v_to LOOP
        c := v_cidx[i];
        IF v_mark[c] <> j THEN
          v_mark[c] := j;
          o_job := o_job || j; o_kind := o_kind || 'top'::text; o_id := o_id || NULL::uuid;
          o_channel := o_channel || v_names[c]; o_offset := o_offset || v_tops[c]; o_epoch := o_epoch || v_epochs[c];
        END IF;
      END LOOP;
    END IF;
    v_from := v_to + 1;
  END LOOP;

  INSERT INTO publications (channel, "offset", id, data, "user", client, conn_info, chan_info, tags, idempotency_key)
  SELECT p_channel[t.at], t.off, p_id[t.at], p_data[t.at], p_user[t.at], p_client[t.at], p_conn_info[t.at],
         p_chan_info[t.at], p_tags[t.at], p_key[t.at]
    FROM unnest(v_insert_at, v_insert_offsets) AS t(at, off);
  UPDATE channels SET top_offset = t.top
    FROM unnest(v_names, v_tops, v_before) AS t(name, top, before)
   WHERE channels.name = t.name AND t.top <> t.before;
  UPDATE ingest_streams SET last_seq = t.last, updated_at = now()
    FROM unnest(v_streams, v_last, v_last_before) AS t(stream, last, before)
   WHERE ingest_streams.stream = t.stream AND t.last <> t.before;

  RETURN QUERY SELECT * FROM unnest(o_job, o_kind, o_id, o_channel, o_offset, o_epoch);
END;
$$;
