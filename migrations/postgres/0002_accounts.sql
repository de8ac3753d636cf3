-- Accounts: sessions (refresh-token families), signing keys, tenant profile.
-- refresh_tokens and signing_keys are read before a tenant is known (login, refresh, token
-- verification): only the worker role may touch them.

ALTER TABLE tenants ADD COLUMN profile jsonb NOT NULL DEFAULT '{}';

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    family_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    replaced_by  uuid,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    private_der  bytea NOT NULL,
    public_raw   bytea NOT NULL,
    created_at   timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens, signing_keys TO coach_worker;
