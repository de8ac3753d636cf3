-- Single-use password reset tokens (stored hashed, valid 30 minutes). Read before any tenant
-- is known: worker role only.
CREATE TABLE password_resets (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON password_resets TO coach_worker;
