-- Feedback on answers (see the PostgreSQL migration).

CREATE TABLE answer_feedback (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id       BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    answer_id        BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    question_id      BLOB,
    emoji            TEXT NOT NULL,
    rating           INTEGER NOT NULL CHECK (rating IN (-1, 0, 1)),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (answer_id, contact_id)
);
CREATE INDEX answer_feedback_tenant ON answer_feedback (tenant_id, rating, updated_at);
CREATE INDEX answer_feedback_contact ON answer_feedback (tenant_id, contact_id);
