-- What the coach remembers of a contact: goals and facts they stated (with the message they
-- came from) and the team's notes about them, put in the prompt of later answers. Erased with
-- the contact (cascade), in the contact's export (`memory`), pruned by retention by the time
-- an item was last written.

CREATE TABLE contact_memory (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    text        text NOT NULL,
    source      text NOT NULL,
    message_id  uuid,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX contact_memory_contact ON contact_memory (contact_id, id);
CREATE INDEX contact_memory_tenant_updated ON contact_memory (tenant_id, updated_at);

ALTER TABLE contact_memory ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_memory FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON contact_memory TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON contact_memory TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON contact_memory TO coach_app, coach_worker;
