-- Accounts whose e-mail address is not yet confirmed (see the PostgreSQL migration): a row per
-- unconfirmed account with its latest link's hashed token; no row means verified.
CREATE TABLE email_verifications (
    user_id     BLOB PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    token_hash  BLOB NOT NULL UNIQUE,
    expires_at  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
