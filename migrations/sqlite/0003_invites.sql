-- Invitations to join a tenant with a role; the token is stored hashed and works once.
CREATE TABLE invites (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email        TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    token_hash   BLOB NOT NULL UNIQUE,
    invited_by   BLOB,
    expires_at   TEXT NOT NULL,
    accepted_at  TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX invites_tenant ON invites (tenant_id);
