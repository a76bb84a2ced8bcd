CREATE TABLE "channels" (
	"name" text PRIMARY KEY NOT NULL,
	"epoch" text NOT NULL,
	"top_offset" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
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
	CONSTRAINT "publications_channel_offset_pk" PRIMARY KEY("channel","offset")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "publications_id_key" ON "publications" USING btree ("id");--> statement-breakpoint
CREATE UNIQUE INDEX "publications_channel_idempotency_key" ON "publications" USING btree ("channel","idempotency_key") WHERE "publications"."idempotency_key" is not null;--> statement-breakpoint
CREATE INDEX "publications_created_at_idx" ON "publications" USING btree ("created_at");