-- The tenant's file library: worksheets, images and recordings a creator sends from the
-- console or a program step. The bytes live in the media store (`media/<tenant>/library/<id>`);
-- a row holds what was read from them. The creator's material, no contact data: erased with
-- the tenant (cascade, and its media folder), not subject to message retention. A message that
-- sent a file names it in its content; its row stays while the file is in the library.
-- `file_uploads` remembers a provider's id for a file uploaded to one channel (WhatsApp's media
-- ids last 30 days), so a program step sends one upload to many contacts.

CREATE TABLE files (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    mime        text NOT NULL,
    kind        text NOT NULL,
    bytes       bigint NOT NULL,
    sha256      text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX files_tenant ON files (tenant_id, created_at);

CREATE TABLE file_uploads (
    file_id      uuid NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    channel_id   uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    provider_ref text NOT NULL,
    uploaded_at  timestamptz NOT NULL,
    PRIMARY KEY (file_id, channel_id)
);

ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON files TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON files TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON files TO coach_app, coach_worker;

ALTER TABLE file_uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON file_uploads TO coach_app
    USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
CREATE POLICY worker_all ON file_uploads TO coach_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON file_uploads TO coach_app, coach_worker;
