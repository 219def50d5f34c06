-- One row per tus upload session. The catalog never stores upload bytes.
CREATE TABLE uploads (
    id               text        PRIMARY KEY,
    owner            text        NOT NULL DEFAULT '',
    -- NULL while the client defers the length (Upload-Defer-Length).
    size             bigint      NULL CHECK (size >= 0),
    committed_offset bigint      NOT NULL DEFAULT 0 CHECK (committed_offset >= 0),
    state            text        NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed')),
    metadata         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    is_partial       boolean     NOT NULL DEFAULT false,
    is_final         boolean     NOT NULL DEFAULT false,
    partial_ids      jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(partial_ids) = 'array'),
    storage          jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(storage) = 'object'),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz NULL,

    -- The invariants the catalog code keeps, enforced once more where no
    -- second writer (a bug, a manual fix) can get around them.
    CONSTRAINT uploads_offset_within_size CHECK (size IS NULL OR committed_offset <= size),
    CONSTRAINT uploads_complete_is_whole CHECK (
        state <> 'complete'
        OR (size IS NOT NULL AND committed_offset = size AND completed_at IS NOT NULL)
    ),
    CONSTRAINT uploads_partial_or_final CHECK (NOT (is_partial AND is_final))
);

-- List order is (created_at DESC, id DESC); matching the index direction
-- exactly lets keyset pages read the index without a sort.
CREATE INDEX uploads_created_at_idx ON uploads (created_at DESC, id DESC);
CREATE INDEX uploads_owner_created_at_idx ON uploads (owner, created_at DESC, id DESC);
-- For sweeps such as "receiving and idle since T".
CREATE INDEX uploads_state_updated_at_idx ON uploads (state, updated_at);
