-- The creator console: handoff requests (for the inbox, the creator's webhook and the
-- analytics of unanswered questions) and indexes for the analytics reads.

CREATE TABLE handoffs (
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    message_id       uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    reason           text NOT NULL CHECK (reason IN ('asked_for_human', 'low_confidence')),
    question         text NOT NULL,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX handoffs_recent ON handoffs (tenant_id, created_at);
-- Deleting a message or a conversation (retention, erasure) finds its handoffs.
CREATE INDEX handoffs_message ON handoffs (message_id);
CREATE INDEX handoffs_conversation ON handoffs (conversation_id);

-- How far each member has read each conversation (the inbox's unread counts).
CREATE TABLE conversation_reads (
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_read        uuid NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

-- Model tokens per tenant and UTC day (metering: what each creator's answers cost).
CREATE TABLE usage_daily (
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day                text NOT NULL,
    answers            bigint NOT NULL,
    prompt_tokens      bigint NOT NULL,
    cached_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Messages per day of a tenant; an answer found from its question (the responder's
-- exactly-once check and the latency chart).
CREATE INDEX messages_tenant_created ON messages (tenant_id, created_at);
CREATE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;

ALTER TABLE conversation_reads ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_reads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_reads TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON conversation_reads TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_reads TO coach_app, coach_worker;

ALTER TABLE usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_daily TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON usage_daily TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON usage_daily TO coach_app, coach_worker;

ALTER TABLE handoffs ENABLE ROW LEVEL SECURITY;
ALTER TABLE handoffs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON handoffs TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON handoffs TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON handoffs TO coach_app, coach_worker;
