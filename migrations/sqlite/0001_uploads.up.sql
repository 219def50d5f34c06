-- One row per tus upload session. The catalog never stores upload bytes.
-- STRICT makes SQLite enforce the column types. Times are INTEGER
-- microseconds since the Unix epoch (UTC): exact, and they sort as numbers.
-- Booleans are 0/1. JSON columns are text checked with the JSON1 functions.
CREATE TABLE uploads (
    id               TEXT    PRIMARY KEY NOT NULL,
    owner            TEXT    NOT NULL DEFAULT '',
    -- NULL while the client defers the length (Upload-Defer-Length).
    size             INTEGER NULL CHECK (size >= 0),
    committed_offset INTEGER NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    state            TEXT    NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed')),
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

    CONSTRAINT uploads_offset_within_size CHECK (size IS NULL OR committed_offset <= size),
    CONSTRAINT uploads_complete_is_whole CHECK (
        state <> 'complete'
        OR (size IS NOT NULL AND committed_offset = size AND completed_at IS NOT NULL)
    ),
    CONSTRAINT uploads_partial_or_final CHECK (NOT (is_partial AND is_final))
) STRICT;

-- List order is (created_at DESC, id DESC).
CREATE INDEX uploads_created_at_idx ON uploads (created_at DESC, id DESC);
CREATE INDEX uploads_owner_created_at_idx ON uploads (owner, created_at DESC, id DESC);
-- For sweeps such as "receiving and idle since T".
CREATE INDEX uploads_state_updated_at_idx ON uploads (state, updated_at);
