-- The creator console: handoff requests (for the inbox, the creator's webhook and the
-- analytics of unanswered questions) and indexes for the analytics reads.

CREATE TABLE handoffs (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id       BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    reason           TEXT NOT NULL CHECK (reason IN ('asked_for_human', 'low_confidence')),
    question         TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX handoffs_recent ON handoffs (tenant_id, created_at);
-- Deleting a message or a conversation (retention, erasure) finds its handoffs.
CREATE INDEX handoffs_message ON handoffs (message_id);
CREATE INDEX handoffs_conversation ON handoffs (conversation_id);

-- How far each member has read each conversation (the inbox's unread counts).
CREATE TABLE conversation_reads (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_read        BLOB NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

-- Model tokens per tenant and UTC day (metering: what each creator's answers cost).
CREATE TABLE usage_daily (
    tenant_id          BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day                TEXT NOT NULL,
    answers            INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Messages per day of a tenant; an answer found from its question (the responder's
-- exactly-once check and the latency chart).
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
