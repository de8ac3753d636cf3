-- Notifications: which events the creator's webhook receives (`tenants.webhook_events`, a
-- comma-framed list kept by the API beside the webhook in the profile, read by the statements
-- that queue events), each member's choice of e-mail on handoff, and the log of webhook
-- deliveries (event id and type, attempt, HTTP status or error, duration: no message text, no
-- contact), pruned by retention.

ALTER TABLE tenants ADD COLUMN webhook_events text NOT NULL DEFAULT ',handoff.requested,';
ALTER TABLE memberships ADD COLUMN email_notifications boolean NOT NULL DEFAULT true;

CREATE TABLE webhook_deliveries (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    attempt      integer NOT NULL,
    status       integer,
    error        text,
    duration_ms  bigint NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (tenant_id, created_at);

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON webhook_deliveries TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO coach_app, coach_worker;
