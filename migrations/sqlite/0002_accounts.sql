-- Accounts: sessions (refresh-token families), signing keys, tenant profile.

ALTER TABLE tenants ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';

-- One row per refresh token; a family is one login session. A token is used once: using it
-- again (replaced_by set) revokes the whole family.
CREATE TABLE refresh_tokens (
    id           BLOB PRIMARY KEY,
    family_id    BLOB NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    expires_at   TEXT NOT NULL,
    replaced_by  BLOB,
    revoked_at   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- JWT signing keys shared by every gateway process; the newest signs, all verify.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_der  BLOB NOT NULL,
    public_raw   BLOB NOT NULL,
    created_at   TEXT NOT NULL
);
