CREATE SCHEMA "tidings";
--> statement-breakpoint
CREATE TABLE "tidings"."outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"data" text NOT NULL,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);

--> statement-breakpoint
-- tidings.publish: a publication made inside the caller's transaction (issue 15). It only
-- writes the outbox row and wakes the relay (a NOTIFY is delivered at commit, and not at all
-- on rollback); the relay numbers and delivers it like any other publication. The checks are
-- the edge checks of the other ways in (src/channels/names.ts, src/protocol/text.ts), so a bad
-- call fails the app's statement instead of a publication that could never be stored.
CREATE OR REPLACE FUNCTION tidings.publish(channel text, data jsonb, idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  v_id bigint;
BEGIN
  IF channel IS NULL OR channel = '' OR octet_length(channel) > 255 OR channel ~ '[\x01-\x20\x7f-\x9f\u2028\u2029]' THEN
    RAISE EXCEPTION 'tidings.publish: invalid channel name' USING ERRCODE = '22023';
  END IF;
  IF data IS NULL THEN
    RAISE EXCEPTION 'tidings.publish: data is required' USING ERRCODE = '22023';
  END IF;
  IF idempotency_key IS NOT NULL AND (idempotency_key = '' OR octet_length(idempotency_key) > 512) THEN
    RAISE EXCEPTION 'tidings.publish: idempotency_key must be 1-512 bytes' USING ERRCODE = '22023';
  END IF;
  INSERT INTO tidings.outbox (channel, data, idempotency_key) VALUES (channel, data::text, idempotency_key) RETURNING id INTO v_id;
  PERFORM pg_notify('tidings_outbox', '');
  RETURN v_id;
END;
$$;
