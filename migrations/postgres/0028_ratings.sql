-- Conversation ratings (CSAT): when a team member resolves a widget conversation whose channel
-- asks for them (`csat: true`), the conversation gets a survey message (buttons `csat:1` to
-- `csat:5`); the visitor's answer is stored here, not as a message, so rating never reopens the
-- conversation. One row per survey (a second answer replaces the first). Personal data (the
-- comment): erased with the contact, the conversation or the survey message (cascade), in the
-- contact's export (`ratings`), pruned by retention.

CREATE TABLE conversation_ratings (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id       uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    survey_id        uuid NOT NULL UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
    rating           smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment          text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX conversation_ratings_tenant ON conversation_ratings (tenant_id, updated_at);
CREATE INDEX conversation_ratings_contact ON conversation_ratings (tenant_id, contact_id);

ALTER TABLE conversation_ratings ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_ratings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_ratings TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON conversation_ratings TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON conversation_ratings TO coach_app, coach_worker;
