-- Chunks the vector store must forget: written in the transaction that deletes a document
-- (`document_id`) or erases a tenant (`document_id` NULL), removed once the vector store did
-- it, so a deletion made while the models are not loaded (or failing) is carried out later.
-- Ids only, and no foreign key: a tenant's erasure keeps its row until its vectors are gone.
CREATE TABLE vector_erasures (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL,
    document_id  UUID,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX vector_erasures_oldest ON vector_erasures (created_at);

ALTER TABLE vector_erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE vector_erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vector_erasures TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON vector_erasures TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON vector_erasures TO coach_app, coach_worker;

-- Sessions ended before their access tokens expire (logout, password change, reuse detection),
-- kept until those tokens would have expired, so a restart without Redis does not bring them
-- back. A session id names no person; expired rows are pruned. Written and read by the worker
-- role only (a logout is a system action on a global session).
CREATE TABLE revoked_sessions (
    session_id  UUID PRIMARY KEY,
    until       BIGINT NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON revoked_sessions TO coach_worker;
