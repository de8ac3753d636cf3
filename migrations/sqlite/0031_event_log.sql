-- The conversation stream's event log (see the PostgreSQL migration). SQLite's single writer
-- numbers rows in commit order; AUTOINCREMENT never reuses a number.

CREATE TABLE event_log (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id BLOB REFERENCES conversations(id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX event_log_tenant ON event_log (tenant_id, seq);
CREATE INDEX event_log_conversation ON event_log (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX event_log_created ON event_log (created_at);
