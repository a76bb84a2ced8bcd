-- Publications partitioned by time (issue 13). The table becomes PARTITION BY RANGE
-- (created_at): src/persist/partitions.ts creates partitions ahead (daily by default,
-- TIDINGS_PG_PARTITION_DAYS) and drops whole ones once every namespace's retention has
-- passed them, instead of deleting row by row.
--
-- The rows stay where they are: the old table is attached, indexes rebuilt, as the first
-- partition ("publications_legacy", everything before tomorrow, UTC). This migration takes
-- an exclusive lock on publications while it builds the new indexes on those rows (time
-- in proportion to the table; see docs/operations.md). A default partition catches rows
-- whose partition is not there yet; the worker moves them out when it creates it.
--
-- PostgreSQL requires the partition key in every unique index, so (channel, offset), id and
-- (channel, idempotency_key) are no longer unique indexes: the commit functions keep them
-- unique as they always have (offsets come from the locked channel row; ids and keys are
-- looked up under that lock), and the indexes stay for the look-ups.
--
-- channel_periods + channels.period_start let a read by offset skip partitions: see
-- tidings_stamp below and src/db/tables/channel-periods.ts.
CREATE TABLE "channel_periods" (
	"channel" text NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"first_offset" bigint NOT NULL,
	CONSTRAINT "channel_periods_channel_starts_at_pk" PRIMARY KEY("channel","starts_at")
);
--> statement-breakpoint
CREATE INDEX "channel_periods_starts_at_idx" ON "channel_periods" USING btree ("starts_at");
--> statement-breakpoint
ALTER TABLE "channels" ADD COLUMN "period_start" timestamp with time zone;
--> statement-breakpoint
ALTER TABLE "publications" RENAME TO "publications_legacy";
--> statement-breakpoint
ALTER TABLE "publications_legacy" DROP CONSTRAINT "publications_channel_offset_pk";
--> statement-breakpoint
DROP INDEX "publications_id_key";
--> statement-breakpoint
DROP INDEX "publications_channel_idempotency_key";
--> statement-breakpoint
ALTER INDEX "publications_created_at_idx" RENAME TO "publications_legacy_created_at_idx";
--> statement-breakpoint
CREATE TABLE "publications" (
	"channel" text NOT NULL,
	"offset" bigint NOT NULL,
	"id" uuid NOT NULL,
	"data" text NOT NULL,
	"user" text,
	"client" text,
	"conn_info" text,
	"chan_info" text,
	"tags" text,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "publications_channel_offset_created_at_pk" PRIMARY KEY("channel","offset","created_at")
) PARTITION BY RANGE ("created_at");
--> statement-breakpoint
CREATE INDEX "publications_id_idx" ON "publications" USING btree ("id");
--> statement-breakpoint
CREATE INDEX "publications_channel_idempotency_key_idx" ON "publications" USING btree ("channel","idempotency_key") WHERE "publications"."idempotency_key" is not null;
--> statement-breakpoint
CREATE INDEX "publications_created_at_idx" ON "publications" USING btree ("created_at");
--> statement-breakpoint
-- The bound is computed here, so it cannot be a literal of the statement.
DO $$
BEGIN
  EXECUTE format('ALTER TABLE publications ATTACH PARTITION publications_legacy FOR VALUES FROM (MINVALUE) TO (%L)',
                 date_trunc('day', now(), 'UTC') + interval '1 day');
END;
$$;
--> statement-breakpoint
CREATE TABLE "publications_default" PARTITION OF "publications" DEFAULT;
--> statement-breakpoint
-- tidings_stamp: the created_at of what a commit inserts, called by every commit with its
-- channel rows locked and their tops after it (p_before: before it; p_periods: each row's
-- period_start). It upholds what reads rely on (src/db/tables/channel-periods.ts): a
-- publication with offset >= a channel_periods row's first_offset is stamped no earlier
-- than its starts_at.
--
-- The stamp is taken after the locks, so it is later than every stamp of a commit that held
-- them before; and never earlier than a channel's period_start, even if the clock steps
-- back. The first commit of a channel on a new UTC day records (channel, day, first offset
-- of the commit): at most one more statement per channel per day.
CREATE OR REPLACE FUNCTION tidings_stamp(p_names text[], p_tops bigint[], p_before bigint[], p_periods timestamptz[])
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
  v_now timestamptz := clock_timestamp();
  v_day timestamptz := date_trunc('day', v_now, 'UTC');
  v_floor timestamptz := '-infinity';
  v_new_day boolean := false;
BEGIN
  FOR c IN 1 .. coalesce(array_length(p_names, 1), 0) LOOP
    IF p_tops[c] <> p_before[c] THEN
      IF p_periods[c] IS NULL OR p_periods[c] < v_day THEN
        v_new_day := true;
      ELSIF p_periods[c] > v_floor THEN
        v_floor := p_periods[c];
      END IF;
    END IF;
  END LOOP;
  IF v_new_day THEN
    INSERT INTO channel_periods (channel, starts_at, first_offset)
    SELECT t.name, v_day, t.before + 1
      FROM unnest(p_names, p_tops, p_before, p_periods) AS t(name, top, before, period)
     WHERE t.top <> t.before AND (t.period IS NULL OR t.period < v_day)
    ON CONFLICT DO NOTHING;
    UPDATE channels SET period_start = v_day
      FROM unnest(p_names, p_tops, p_before, p_periods) AS t(name, top, before, period)
     WHERE channels.name = t.name AND t.top <> t.before AND (t.period IS NULL OR t.period < v_day);
  END IF;
  RETURN greatest(v_now, v_floor);
END;
$$;
--> statement-breakpoint
-- tidings_commit (0002) and tidings_commit_many (0005), unchanged but for the stamp: they
-- read period_start with the lock and insert created_at from tidings_stamp.
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
  v_names text[]; v_epochs text[]; v_tops bigint[]; v_before bigint[]; v_periods timestamptz[]; v_stamp timestamptz;
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
      RETURNING ch.name, ch.epoch, ch.top_offset, ch.period_start
    )
    SELECT array_agg(l.name ORDER BY l.name), array_agg(l.epoch ORDER BY l.name), array_agg(l.top_offset ORDER BY l.name),
           array_agg(l.period_start ORDER BY l.name)
      INTO v_names, v_epochs, v_tops, v_periods FROM locked l;
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

    IF cardinality(v_insert_at) > 0 THEN
      v_stamp := tidings_stamp(v_names, v_tops, v_before, v_periods);
      INSERT INTO publications (channel, "offset", id, data, "user", client, conn_info, chan_info, tags, idempotency_key, created_at)
      SELECT p_channel[j], o, p_id[j], p_data[j], p_user[j], p_client[j], p_conn_info[j], p_chan_info[j], p_tags[j], p_key[j], v_stamp
        FROM unnest(v_insert_at, v_insert_offsets) AS t(j, o);
    END IF;
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
--> statement-breakpoint
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
  v_names text[]; v_epochs text[]; v_tops bigint[]; v_before bigint[]; v_periods timestamptz[]; v_cidx int[]; v_mark int[];
  v_stamp timestamptz;
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
    RETURNING ch.name, ch.epoch, ch.top_offset, ch.period_start
  )
  SELECT coalesce(array_agg(l.name ORDER BY l.name), '{}'), coalesce(array_agg(l.epoch ORDER BY l.name), '{}'),
         coalesce(array_agg(l.top_offset ORDER BY l.name), '{}'), coalesce(array_agg(l.period_start ORDER BY l.name), '{}')
    INTO v_names, v_epochs, v_tops, v_periods FROM locked l;
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

  IF cardinality(v_insert_at) > 0 THEN
    v_stamp := tidings_stamp(v_names, v_tops, v_before, v_periods);
    INSERT INTO publications (channel, "offset", id, data, "user", client, conn_info, chan_info, tags, idempotency_key, created_at)
    SELECT p_channel[t.at], t.off, p_id[t.at], p_data[t.at], p_user[t.at], p_client[t.at], p_conn_info[t.at],
           p_chan_info[t.at], p_tags[t.at], p_key[t.at], v_stamp
      FROM unnest(v_insert_at, v_insert_offsets) AS t(at, off);
  END IF;
  UPDATE channels SET top_offset = t.top
    FROM unnest(v_names, v_tops, v_before) AS t(name, top, before)
   WHERE channels.name = t.name AND t.top <> t.before;
  UPDATE ingest_streams SET last_seq = t.last, updated_at = now()
    FROM unnest(v_streams, v_last, v_last_before) AS t(stream, last, before)
   WHERE ingest_streams.stream = t.stream AND t.last <> t.before;

  RETURN QUERY SELECT * FROM unnest(o_job, o_kind, o_id, o_channel, o_offset, o_epoch);
END;
$$;
