-- Named leases held by one gateway process at a time (see the PostgreSQL migration).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      BLOB NOT NULL,
    expires_at  TEXT NOT NULL
);
