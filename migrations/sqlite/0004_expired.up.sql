-- A session abandoned while receiving: no change for the upload TTL, so
-- the expiry sweep released its storage. Only the catalog's Expire writes
-- it, and nothing moves a session on from it.
--
-- SQLite cannot change a CHECK in place: uploads is rebuilt as 0003 did,
-- with 'expired' among the states and every column, constraint and index
-- it had, each constraint where it was.
CREATE TABLE uploads_new (
    id               TEXT    PRIMARY KEY NOT NULL,
    owner            TEXT    NOT NULL DEFAULT '',
    size             INTEGER NULL CHECK (size >= 0),
    committed_offset INTEGER NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    state            TEXT    NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed', 'rejected', 'expired')),
    metadata         TEXT    NOT NULL DEFAULT '{}'
        CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    is_partial       INTEGER NOT NULL DEFAULT 0 CHECK (is_partial IN (0, 1)),
    is_final         INTEGER NOT NULL DEFAULT 0 CHECK (is_final IN (0, 1)),
    partial_ids      TEXT    NOT NULL DEFAULT '[]'
        CHECK (json_valid(partial_ids) AND json_type(partial_ids) = 'array'),
    storage          TEXT    NOT NULL DEFAULT '{}'
        CHECK (json_valid(storage) AND json_type(storage) = 'object'),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    completed_at     INTEGER NULL,
    hash_state       BLOB    NULL,
    hash_offset      INTEGER NOT NULL DEFAULT 0
        CONSTRAINT uploads_hash_within_offset CHECK (
            hash_offset >= 0 AND hash_offset <= committed_offset
            AND (hash_state IS NOT NULL OR hash_offset = 0)
        ),
    sha256           TEXT    NULL
        CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    blob_sha256      TEXT    NULL REFERENCES blobs (sha256)
        CONSTRAINT uploads_blob_is_digest CHECK (
            CASE WHEN state = 'complete' THEN blob_sha256 IS sha256
                 ELSE blob_sha256 IS NULL
            END
        ),
    -- The media type sniffed from the stored bytes; NULL until known.
    -- Printable ASCII with a slash, at most 255 bytes: the catalog checks
    -- the full media type grammar, the schema the shape.
    content_type     TEXT    NULL
        CHECK (length(content_type) <= 255 AND content_type NOT GLOB '*[^ -~]*'
            AND content_type GLOB '?*/?*'),

    CONSTRAINT uploads_offset_within_size CHECK (size IS NULL OR committed_offset <= size),
    CONSTRAINT uploads_complete_is_whole CHECK (
        state <> 'complete'
        OR (size IS NOT NULL AND committed_offset = size AND completed_at IS NOT NULL)
    ),
    CONSTRAINT uploads_partial_or_final CHECK (NOT (is_partial AND is_final))
) STRICT;

INSERT INTO uploads_new (id, owner, size, committed_offset, state, metadata, is_partial,
        is_final, partial_ids, storage, created_at, updated_at, completed_at,
        hash_state, hash_offset, sha256, blob_sha256, content_type)
    SELECT id, owner, size, committed_offset, state, metadata, is_partial,
        is_final, partial_ids, storage, created_at, updated_at, completed_at,
        hash_state, hash_offset, sha256, blob_sha256, content_type
    FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_new RENAME TO uploads;

-- The indexes went with the old table; these are 0001's and 0002's. The
-- sweep's query, "receiving and idle since T, least recently changed
-- first", reads uploads_state_updated_at_idx: no new index for it.
CREATE INDEX uploads_created_at_idx ON uploads (created_at DESC, id DESC);
CREATE INDEX uploads_owner_created_at_idx ON uploads (owner, created_at DESC, id DESC);
CREATE INDEX uploads_state_updated_at_idx ON uploads (state, updated_at);
CREATE INDEX uploads_blob_sha256_owner_idx ON uploads (blob_sha256, owner)
    WHERE blob_sha256 IS NOT NULL;

-- PurgeEvents deletes delivered events by delivery time. Pending and dead
-- events have no delivered_at and stay out of the index.
CREATE INDEX events_delivered_at_idx ON events (delivered_at)
    WHERE delivered_at IS NOT NULL;
