-- The conversation stream's event log: every event published on the bus (except an answer's
-- streamed pieces) is written here first, numbered in commit order, so `GET /v1/events`
-- resumes from the database on any gateway process (`Last-Event-ID` is `seq`) and a process
-- that missed events on the bus (a Redis blip) reads them back. Writers take a transaction
-- advisory lock before inserting, so a row with a higher `seq` is never visible before one with
-- a lower `seq`.
-- Events carry contact data (message text, handoff questions): a row names its conversation
-- and goes with it (contact erasure, tenant erasure, message retention); every row is pruned
-- after `http.event_resume_minutes`.

CREATE TABLE event_log (
    seq             bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id uuid REFERENCES conversations(id) ON DELETE CASCADE,
    event           text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX event_log_tenant ON event_log (tenant_id, seq);
CREATE INDEX event_log_conversation ON event_log (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX event_log_created ON event_log (created_at);

ALTER TABLE event_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_log TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON event_log TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON event_log TO coach_app, coach_worker;
GRANT USAGE, SELECT ON SEQUENCE event_log_seq_seq TO coach_app, coach_worker;
