-- Handoffs may also come from a message that signals a crisis. SQLite cannot change a CHECK
-- constraint in place: the table is rebuilt (nothing references it).

CREATE TABLE handoffs_next (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id       BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    reason           TEXT NOT NULL
        CHECK (reason IN ('asked_for_human', 'low_confidence', 'quota_reached', 'crisis')),
    question         TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
INSERT INTO handoffs_next (tenant_id, message_id, conversation_id, reason, question, created_at)
    SELECT tenant_id, message_id, conversation_id, reason, question, created_at FROM handoffs;
DROP TABLE handoffs;
ALTER TABLE handoffs_next RENAME TO handoffs;
CREATE INDEX handoffs_recent ON handoffs (tenant_id, created_at);
CREATE INDEX handoffs_message ON handoffs (message_id);
CREATE INDEX handoffs_conversation ON handoffs (conversation_id);
