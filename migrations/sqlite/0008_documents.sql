-- Knowledge documents. `version` is the version being built; `live_version` the one search
-- uses, switched in one update when a re-index is ready, so search never sees both or neither.
-- The uploaded bytes are kept (document_blobs) so an acknowledged upload survives a restart
-- and a re-index needs no second upload.
CREATE TABLE documents (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         TEXT NOT NULL,
    filename      text,
    source_url    text,
    kind          TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error         text,
    progress      REAL NOT NULL DEFAULT 0,
    chunks        INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL,
    live_version  INTEGER,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX documents_tenant ON documents (tenant_id, created_at DESC);
CREATE TABLE document_blobs (
    document_id   BLOB PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    content       BLOB NOT NULL
);
