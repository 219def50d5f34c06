-- A session abandoned while receiving: no change for the upload TTL, so
-- the expiry sweep released its storage. Only the catalog's Expire writes
-- it, and nothing moves a session on from it.
ALTER TABLE uploads
    DROP CONSTRAINT uploads_state_check,
    ADD CONSTRAINT uploads_state_check
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed', 'rejected', 'expired'));

-- The sweep's query, "receiving and idle since T, least recently changed
-- first", reads 0001's uploads_state_updated_at_idx (state, updated_at):
-- no new index for it.

-- PurgeEvents deletes delivered events by delivery time. Pending and dead
-- events have no delivered_at and stay out of the index.
CREATE INDEX events_delivered_at_idx ON events (delivered_at)
    WHERE delivered_at IS NOT NULL;
