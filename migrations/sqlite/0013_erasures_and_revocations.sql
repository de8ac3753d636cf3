-- Chunks the vector store must forget: written in the transaction that deletes a document
-- (`document_id`) or erases a tenant (`document_id` NULL), removed once the vector store did
-- it, so a deletion made while the models are not loaded (or failing) is carried out later.
-- Ids only, and no foreign key: a tenant's erasure keeps its row until its vectors are gone.
CREATE TABLE vector_erasures (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL,
    document_id  BLOB,
    created_at   TEXT NOT NULL
);
CREATE INDEX vector_erasures_oldest ON vector_erasures (created_at);

-- Sessions ended before their access tokens expire (logout, password change, reuse detection),
-- kept until those tokens would have expired, so a restart without Redis does not bring them
-- back. A session id names no person; expired rows are pruned.
CREATE TABLE revoked_sessions (
    session_id  BLOB PRIMARY KEY,
    until       INTEGER NOT NULL
);
