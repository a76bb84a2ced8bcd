-- Channel search by name prefix (issue 16: API channel_search, the admin console). The primary
-- key sorts by the database's collation, where names sharing a prefix need not be adjacent;
-- text_pattern_ops compares bytes, so `name LIKE 'prefix%'` is one range scan. IF NOT EXISTS:
-- a large deployment may build it beforehand with CREATE INDEX CONCURRENTLY (docs/operations.md).
CREATE INDEX IF NOT EXISTS "channels_name_prefix_idx" ON "channels" USING btree ("name" text_pattern_ops);
