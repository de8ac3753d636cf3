-- Feedback on answers: a contact's reaction to a message of ours (a WhatsApp or Telegram
-- reaction, the widget's thumbs), with the question it answered, so the creator sees unhelpful
-- answers beside unanswered questions. One row per answer and contact (a new reaction replaces
-- the old one, a removed reaction deletes it). Personal data: erased with the contact
-- (cascade), in the contact's export (`feedback`), pruned by retention.

CREATE TABLE answer_feedback (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id       uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    answer_id        uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    question_id      uuid,
    emoji            text NOT NULL,
    rating           smallint NOT NULL CHECK (rating IN (-1, 0, 1)),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (answer_id, contact_id)
);
CREATE INDEX answer_feedback_tenant ON answer_feedback (tenant_id, rating, updated_at);
CREATE INDEX answer_feedback_contact ON answer_feedback (tenant_id, contact_id);

ALTER TABLE answer_feedback ENABLE ROW LEVEL SECURITY;
ALTER TABLE answer_feedback FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON answer_feedback TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON answer_feedback TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON answer_feedback TO coach_app, coach_worker;
