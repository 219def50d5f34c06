DROP TABLE events;
-- The old schema has no rejected state. A rejected session's bytes are
-- gone and the server refused it, as for a failed one: it becomes failed.
UPDATE uploads SET state = 'failed' WHERE state = 'rejected';
ALTER TABLE uploads
    DROP CONSTRAINT uploads_state_check,
    ADD CONSTRAINT uploads_state_check
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed')),
    DROP COLUMN content_type;
ALTER TABLE blobs DROP COLUMN content_type;
