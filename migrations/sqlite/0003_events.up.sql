-- SQLite cannot change a CHECK in place, so uploads is rebuilt (the
-- documented create-copy-drop-rename procedure) with 'rejected' among the
-- states and the new content_type column. The table keeps every column,
-- constraint and index it had, each constraint where it was: 0002's stay
-- on their columns, so that 0002's down migration can still drop them.
-- Dropping the old table checks no foreign key: uploads references blobs,
-- nothing references uploads.
CREATE TABLE uploads_new (
    id               TEXT    PRIMARY KEY NOT NULL,
    owner            TEXT    NOT NULL DEFAULT '',
    size             INTEGER NULL CHECK (size >= 0),
    committed_offset INTEGER NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    state            TEXT    NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed', 'rejected')),
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
        hash_state, hash_offset, sha256, blob_sha256)
    SELECT id, owner, size, committed_offset, state, metadata, is_partial,
        is_final, partial_ids, storage, created_at, updated_at, completed_at,
        hash_state, hash_offset, sha256, blob_sha256
    FROM uploads;
DROP TABLE uploads;
ALTER TABLE uploads_new RENAME TO uploads;

-- The indexes went with the old table; these are 0001's and 0002's.
CREATE INDEX uploads_created_at_idx ON uploads (created_at DESC, id DESC);
CREATE INDEX uploads_owner_created_at_idx ON uploads (owner, created_at DESC, id DESC);
CREATE INDEX uploads_state_updated_at_idx ON uploads (state, updated_at);
CREATE INDEX uploads_blob_sha256_owner_idx ON uploads (blob_sha256, owner)
    WHERE blob_sha256 IS NOT NULL;

ALTER TABLE blobs ADD COLUMN content_type TEXT NULL
    CHECK (length(content_type) <= 255 AND content_type NOT GLOB '*[^ -~]*'
        AND content_type GLOB '?*/?*');

-- The transactional outbox: one row per state transition, written in the
-- transaction that makes the change, delivered later (at least once) by
-- the webhook dispatcher. Times are INTEGER microseconds, as everywhere.
CREATE TABLE events (
    -- 128 random bits in hex: the receivers' idempotency key.
    id              TEXT    PRIMARY KEY NOT NULL
        CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),
    type            TEXT    NOT NULL CHECK (type IN (
        'upload.created', 'upload.completed', 'upload.failed',
        'upload.rejected', 'upload.terminated', 'upload.expired')),
    -- Not a foreign key: the event must outlive whatever happens to the
    -- session's row (rebuilds like the one above included), and carries
    -- its snapshot anyway.
    upload_id       TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    payload         TEXT    NOT NULL
        CHECK (json_valid(payload) AND json_type(payload) = 'object'),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER NULL,
    -- Set when delivery was given up (dead-lettered).
    dead_at         INTEGER NULL,

    CONSTRAINT events_delivered_or_dead CHECK (delivered_at IS NULL OR dead_at IS NULL)
) STRICT;

-- The events still to deliver, in delivery order: ClaimEvents walks it
-- from the oldest and stops after its limit of due rows (the others wait
-- out a lease or a backoff); ListEvents(Pending) walks it backwards. It
-- holds only the undelivered tail, however long the table grows.
CREATE INDEX events_pending_idx ON events (occurred_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
-- ListEvents, newest first, and the dead letters among them.
CREATE INDEX events_occurred_at_idx ON events (occurred_at DESC, id DESC);
CREATE INDEX events_dead_idx ON events (occurred_at DESC, id DESC)
    WHERE dead_at IS NOT NULL;
