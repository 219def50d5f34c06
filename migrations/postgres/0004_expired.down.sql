DROP INDEX events_delivered_at_idx;
-- The old schema has no expired state. An expired session was abandoned
-- while receiving and its bytes are gone, as for one its client deleted:
-- it becomes terminated. Its upload.expired event stays (0003 accepts the
-- type) and no new one is written; updated_at is left alone.
UPDATE uploads SET state = 'terminated' WHERE state = 'expired';
ALTER TABLE uploads
    DROP CONSTRAINT uploads_state_check,
    ADD CONSTRAINT uploads_state_check
        CHECK (state IN ('receiving', 'complete', 'terminated', 'failed', 'rejected'));
