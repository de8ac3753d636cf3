-- The tenant's file library (see the PostgreSQL migration).

CREATE TABLE files (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX files_tenant ON files (tenant_id, created_at);

CREATE TABLE file_uploads (
    file_id      BLOB NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    channel_id   BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider_ref TEXT NOT NULL,
    uploaded_at  TEXT NOT NULL,
    PRIMARY KEY (file_id, channel_id)
);
