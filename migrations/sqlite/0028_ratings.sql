-- Conversation ratings (see the PostgreSQL migration).

CREATE TABLE conversation_ratings (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id       BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    survey_id        BLOB NOT NULL UNIQUE REFERENCES messages(id) ON DELETE CASCADE,
    rating           INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment          TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX conversation_ratings_tenant ON conversation_ratings (tenant_id, updated_at);
CREATE INDEX conversation_ratings_contact ON conversation_ratings (tenant_id, contact_id);
