-- The inbox's order with its tie-breaker (see the PostgreSQL migration).
DROP INDEX conversations_recent;
CREATE INDEX conversations_recent ON conversations (tenant_id, last_message_at DESC, id DESC);
DROP INDEX conversations_status;
CREATE INDEX conversations_status ON conversations (tenant_id, status, last_message_at DESC, id DESC);
