-- Content-addressed storage: one row per distinct content (SHA-256), shared
-- by every complete session with that digest. The row lives exactly as
-- long as a session references it: the catalog deletes it with the last
-- reference, in the same transaction.
CREATE TABLE blobs (
    sha256     text        PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint      NOT NULL CHECK (size >= 0),
    -- The upload whose stored object holds the bytes, and where that is.
    -- Not a foreign key: the object outlives its own session's release.
    upload_id  text        NOT NULL,
    storage    jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(storage) = 'object'),
    refs       bigint      NOT NULL CHECK (refs >= 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE uploads
    -- The resumable digest state after hash_offset bytes (crypto/sha256's
    -- MarshalBinary); NULL when there is none, and hash_offset is then 0.
    ADD COLUMN hash_state  bytea  NULL,
    ADD COLUMN hash_offset bigint NOT NULL DEFAULT 0,
    ADD COLUMN sha256      text   NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    -- The foreign key makes "a session never points at a deleted blob" a
    -- property of the schema, not only of the code.
    ADD COLUMN blob_sha256 text   NULL REFERENCES blobs (sha256),
    -- Only CommitOffset moves hash_offset, always to the committed offset,
    -- and offsets never move backwards, so the state never runs ahead.
    ADD CONSTRAINT uploads_hash_within_offset CHECK (
        hash_offset >= 0 AND hash_offset <= committed_offset
        AND (hash_state IS NOT NULL OR hash_offset = 0)
    ),
    -- A complete session references the blob of its digest, if it has one;
    -- no other session references any.
    ADD CONSTRAINT uploads_blob_is_digest CHECK (
        CASE WHEN state = 'complete' THEN blob_sha256 IS NOT DISTINCT FROM sha256
             ELSE blob_sha256 IS NULL
        END
    );

-- One index serves the foreign key (sessions of a blob, checked when the
-- blob row goes) and FindBlob's owner scope (blob_sha256 = $1 AND
-- owner = $2). Only sessions with a blob are indexed: that is all a lookup
-- by blob can match, and it keeps receiving sessions out of it.
CREATE INDEX uploads_blob_sha256_owner_idx ON uploads (blob_sha256, owner)
    WHERE blob_sha256 IS NOT NULL;
