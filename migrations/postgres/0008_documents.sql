-- Knowledge documents. `version` is the version being built; `live_version` the one search
-- uses, switched in one update when a re-index is ready, so search never sees both or neither.
-- The uploaded bytes are kept (document_blobs) so an acknowledged upload survives a restart
-- and a re-index needs no second upload.
CREATE TABLE documents (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    title         text NOT NULL,
    filename      text,
    source_url    text,
    kind          text NOT NULL,
    size_bytes    bigint NOT NULL,
    sha256        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    error         text,
    progress      double precision NOT NULL DEFAULT 0,
    chunks        integer NOT NULL DEFAULT 0,
    version       bigint NOT NULL,
    live_version  bigint,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX documents_tenant ON documents (tenant_id, created_at DESC);
CREATE TABLE document_blobs (
    document_id   uuid PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    content       bytea NOT NULL
);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON documents TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON documents TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON documents TO coach_app, coach_worker;
ALTER TABLE document_blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE document_blobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON document_blobs TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON document_blobs TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON document_blobs TO coach_app, coach_worker;
