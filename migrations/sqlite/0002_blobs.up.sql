-- Content-addressed storage: one row per distinct content (SHA-256), shared
-- by every complete session with that digest. The row lives exactly as
-- long as a session references it: the catalog deletes it with the last
-- reference, in the same transaction.
CREATE TABLE blobs (
    sha256     TEXT    PRIMARY KEY NOT NULL
        CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size       INTEGER NOT NULL CHECK (size >= 0),
    -- The upload whose stored object holds the bytes, and where that is.
    -- Not a foreign key: the object outlives its own session's release.
    upload_id  TEXT    NOT NULL,
    storage    TEXT    NOT NULL DEFAULT '{}'
        CHECK (json_valid(storage) AND json_type(storage) = 'object'),
    refs       INTEGER NOT NULL CHECK (refs >= 0),
    created_at INTEGER NOT NULL -- microseconds since the Unix epoch, UTC
) STRICT;

-- SQLite adds one column per statement and cannot add table constraints,
-- so the checks PostgreSQL names sit on the columns they belong to (a
-- column's CHECK may read other columns). Each is tested against the
-- existing rows.

-- The resumable digest state after hash_offset bytes (crypto/sha256's
-- MarshalBinary); NULL when there is none, and hash_offset is then 0.
ALTER TABLE uploads ADD COLUMN hash_state BLOB NULL;
-- Only CommitOffset moves hash_offset, always to the committed offset, and
-- offsets never move backwards, so the state never runs ahead.
ALTER TABLE uploads ADD COLUMN hash_offset INTEGER NOT NULL DEFAULT 0
    CONSTRAINT uploads_hash_within_offset CHECK (
        hash_offset >= 0 AND hash_offset <= committed_offset
        AND (hash_state IS NOT NULL OR hash_offset = 0)
    );
ALTER TABLE uploads ADD COLUMN sha256 TEXT NULL
    CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*');
-- The foreign key (enforced: every connection sets foreign_keys=ON) makes
-- "a session never points at a deleted blob" a property of the schema. A
-- complete session references the blob of its digest, if it has one; no
-- other session references any.
ALTER TABLE uploads ADD COLUMN blob_sha256 TEXT NULL REFERENCES blobs (sha256)
    CONSTRAINT uploads_blob_is_digest CHECK (
        CASE WHEN state = 'complete' THEN blob_sha256 IS sha256
             ELSE blob_sha256 IS NULL
        END
    );

-- One index serves the foreign key (sessions of a blob, checked when the
-- blob row goes) and FindBlob's owner scope. Only sessions with a blob are
-- indexed: that is all a lookup by blob can match.
CREATE INDEX uploads_blob_sha256_owner_idx ON uploads (blob_sha256, owner)
    WHERE blob_sha256 IS NOT NULL;
