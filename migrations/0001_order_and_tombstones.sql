CREATE TABLE "ingest_streams" (
	"stream" text PRIMARY KEY NOT NULL,
	"last_seq" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "removed_publications" (
	"id" uuid PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"offset" bigint NOT NULL,
	"idempotency_key" text,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "removed_publications_channel_idempotency_key" ON "removed_publications" USING btree ("channel","idempotency_key") WHERE "removed_publications"."idempotency_key" is not null;--> statement-breakpoint
CREATE INDEX "removed_publications_created_at_idx" ON "removed_publications" USING btree ("created_at");