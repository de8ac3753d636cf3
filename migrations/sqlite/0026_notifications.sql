-- Notifications (see the PostgreSQL migration).

ALTER TABLE tenants ADD COLUMN webhook_events TEXT NOT NULL DEFAULT ',handoff.requested,';
ALTER TABLE memberships ADD COLUMN email_notifications INTEGER NOT NULL DEFAULT 1;

CREATE TABLE webhook_deliveries (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    status       INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (tenant_id, created_at);
