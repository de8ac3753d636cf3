-- Human handoff: a conversation is 'open' (the coach answers), 'waiting' (the coach asked for a
-- human) or 'human' (a member took over; the coach stays silent until handed back).
ALTER TABLE conversations ADD COLUMN assignee BLOB;
CREATE INDEX conversations_status ON conversations (tenant_id, status, last_message_at DESC);
