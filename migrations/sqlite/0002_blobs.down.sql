-- A column goes only once nothing else in the schema names it: the index
-- first, then each column before the one its CHECK reads.
DROP INDEX uploads_blob_sha256_owner_idx;
ALTER TABLE uploads DROP COLUMN blob_sha256;
ALTER TABLE uploads DROP COLUMN sha256;
ALTER TABLE uploads DROP COLUMN hash_offset;
ALTER TABLE uploads DROP COLUMN hash_state;
DROP TABLE blobs;
