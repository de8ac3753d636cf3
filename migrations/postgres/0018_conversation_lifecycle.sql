-- Conversations can be resolved (until the contact writes again) and snoozed (until a time or
-- the contact's next message): `snoozed_until` is when it comes back by itself, `resume_status`
-- the status it comes back to. Both NULL unless snoozed.
ALTER TABLE conversations ADD COLUMN snoozed_until timestamptz;
ALTER TABLE conversations ADD COLUMN resume_status text;
CREATE INDEX conversations_snoozed ON conversations (snoozed_until) WHERE status = 'snoozed';
