CREATE TABLE "read_cursors" (
	"user" text NOT NULL,
	"channel" text NOT NULL,
	"offset" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "read_cursors_user_channel_pk" PRIMARY KEY("user","channel")
);
