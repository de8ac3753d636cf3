-- The team's tools around a conversation: labels (filters in the inbox), private notes (never
-- sent to the contact; exported with and erased with the contact's conversations, pruned by
-- retention like messages) and the tenant's canned replies (typed with `/shortcut`).

CREATE TABLE conversation_labels (
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    label            text NOT NULL,
    PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_tenant ON conversation_labels (tenant_id, label);

CREATE TABLE conversation_notes (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author           uuid,
    text             text NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes (conversation_id, id);
CREATE INDEX conversation_notes_tenant_created ON conversation_notes (tenant_id, created_at);

CREATE TABLE canned_replies (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    shortcut    text NOT NULL,
    text        text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, shortcut)
);

ALTER TABLE conversation_labels ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_labels FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_labels TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON conversation_labels TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_labels TO coach_app, coach_worker;

ALTER TABLE conversation_notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_notes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_notes TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON conversation_notes TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_notes TO coach_app, coach_worker;

ALTER TABLE canned_replies ENABLE ROW LEVEL SECURITY;
ALTER TABLE canned_replies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON canned_replies TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON canned_replies TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON canned_replies TO coach_app, coach_worker;
