-- Edits and deletes (issue 15): `history` with `latest: true` looks up the last edit or delete
-- of each publication it returns by the offset its tags name. Only edit and delete events
-- carry "tidings_of", so the partial index holds just them.
CREATE INDEX "publications_edit_target_idx" ON "publications" USING btree ("channel", (("tags"::jsonb ->> 'tidings_of')::bigint)) WHERE "tags" LIKE '%"tidings_of"%';
