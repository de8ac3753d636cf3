-- The team's tools around a conversation: labels, private notes and canned replies (see the
-- PostgreSQL migration).

CREATE TABLE conversation_labels (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    label            TEXT NOT NULL,
    PRIMARY KEY (conversation_id, label)
);
CREATE INDEX conversation_labels_tenant ON conversation_labels (tenant_id, label);

CREATE TABLE conversation_notes (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author           BLOB,
    text             TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX conversation_notes_conversation ON conversation_notes (conversation_id, id);
CREATE INDEX conversation_notes_tenant_created ON conversation_notes (tenant_id, created_at);

CREATE TABLE canned_replies (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    shortcut    TEXT NOT NULL,
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, shortcut)
);
