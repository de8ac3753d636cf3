-- Handoffs may also come from a spent daily answer quota (`brain.answers_per_day`).

ALTER TABLE handoffs DROP CONSTRAINT handoffs_reason_check;
ALTER TABLE handoffs ADD CONSTRAINT handoffs_reason_check
    CHECK (reason IN ('asked_for_human', 'low_confidence', 'quota_reached'));
