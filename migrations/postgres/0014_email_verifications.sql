-- Accounts whose e-mail address is not yet confirmed (`auth.verify_email`): one row per such
-- account, holding the hashed token of the latest link sent (valid 24 hours), deleted when the
-- address is confirmed (a link, or a password reset, which also proves the mailbox). An account
-- without a row counts as verified, so accounts made while verification was off keep working
-- when it is turned on. Read before any tenant is known: worker role only; erased with the user.
CREATE TABLE email_verifications (
    user_id     uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON email_verifications TO coach_worker;
