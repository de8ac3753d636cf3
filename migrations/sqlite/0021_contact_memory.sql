-- What the coach remembers of a contact (see the PostgreSQL migration).

CREATE TABLE contact_memory (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    source      TEXT NOT NULL,
    message_id  BLOB,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX contact_memory_contact ON contact_memory (contact_id, id);
CREATE INDEX contact_memory_tenant_updated ON contact_memory (tenant_id, updated_at);
