-- Named leases: one gateway process at a time holds each (a Telegram channel's getUpdates loop,
-- which Telegram refuses to serve twice at once), renewing it while it works; a lease that is
-- not renewed runs out and another process takes the work over. Names and process ids only.
CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      uuid NOT NULL,
    expires_at  timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON leases TO coach_worker;
