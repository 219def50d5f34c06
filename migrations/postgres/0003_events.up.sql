-- The media type sniffed from the stored bytes, on the session and on its
-- blob; NULL until known. Printable ASCII with a slash, at most 255 bytes:
-- the catalog checks the full media type grammar, the schema the shape.
ALTER TABLE uploads
    ADD COLUMN content_type text NULL
        CHECK (content_type ~ '^[ -~]+/[ -~]+$' AND octet_length(content_type) <= 255),
    -- A session refused by policy after its last byte.
    DROP CONSTRAINT uploads_state_check,
    ADD CONSTRAINT uploads_state_check
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed', 'rejected'));

ALTER TABLE blobs
    ADD COLUMN content_type text NULL
        CHECK (content_type ~ '^[ -~]+/[ -~]+$' AND octet_length(content_type) <= 255);

-- The transactional outbox: one row per state transition, written in the
-- transaction that makes the change, delivered later (at least once) by
-- the webhook dispatcher.
CREATE TABLE events (
    -- 128 random bits in hex: the receivers' idempotency key.
    id              text        PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    type            text        NOT NULL CHECK (type IN (
        'upload.created', 'upload.completed', 'upload.failed',
        'upload.rejected', 'upload.terminated', 'upload.expired')),
    -- Not a foreign key: the event must outlive whatever happens to the
    -- session's row, and carries its snapshot anyway.
    upload_id       text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    -- json, not jsonb: the payload is handed back byte for byte as the
    -- catalog wrote it, and nothing queries inside it.
    payload         json        NOT NULL CHECK (json_typeof(payload) = 'object'),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text        NOT NULL DEFAULT '',
    delivered_at    timestamptz NULL,
    -- Set when delivery was given up (dead-lettered).
    dead_at         timestamptz NULL,

    CONSTRAINT events_delivered_or_dead CHECK (delivered_at IS NULL OR dead_at IS NULL)
);

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
