-- Handoffs may also come from a message that signals a crisis (answered with help resources,
-- never coached; the console's alert marks it urgent).

ALTER TABLE handoffs DROP CONSTRAINT handoffs_reason_check;
ALTER TABLE handoffs ADD CONSTRAINT handoffs_reason_check
    CHECK (reason IN ('asked_for_human', 'low_confidence', 'quota_reached', 'crisis'));
