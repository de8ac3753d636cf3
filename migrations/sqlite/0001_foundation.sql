-- Foundation schema (SQLite). Ids are UUIDv7 stored as 16-byte BLOBs (time-ordered);
-- timestamps are RFC 3339 text in UTC, so text order is time order.

CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE memberships (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE channels (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX channels_tenant ON channels (tenant_id);

CREATE TABLE contacts (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    display_name  TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX contacts_tenant ON contacts (tenant_id);

CREATE TABLE contact_identities (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id   BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    external_id  TEXT NOT NULL,
    contact_id   BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    username     TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, channel_id, external_id)
);

CREATE TABLE conversations (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id       BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id       BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    external_id      TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'open',
    last_message_at  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (tenant_id, channel_id, contact_id)
);
CREATE INDEX conversations_recent ON conversations (tenant_id, last_message_at DESC);

CREATE TABLE messages (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id           BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    conversation_id      BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id           BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    direction            TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    dedup_key            TEXT,
    provider_message_id  TEXT,
    content              TEXT NOT NULL,
    reply_to             BLOB,
    status_rank          INTEGER,
    error_code           TEXT,
    error_title          TEXT,
    provider_ts          TEXT,
    created_at           TEXT NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_provider_id ON messages (tenant_id, channel_id, provider_message_id);

-- Every status report, deduplicated; the message row holds the furthest status.
CREATE TABLE message_status (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id           BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    dedup_key            TEXT NOT NULL,
    provider_message_id  TEXT NOT NULL,
    status_rank          INTEGER NOT NULL,
    error_code           TEXT,
    error_title          TEXT,
    provider_ts          TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);
CREATE INDEX message_status_provider_id ON message_status (tenant_id, channel_id, provider_message_id);

CREATE TABLE unknown_events (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id  BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    dedup_key   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    sender      TEXT,
    raw         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);

CREATE TABLE jobs (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    message_id       BLOB,
    payload          TEXT NOT NULL DEFAULT '{}',
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'done', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (tenant_id, kind, message_id)
);
CREATE INDEX jobs_due ON jobs (state, kind, next_attempt_at);

CREATE TABLE outbox (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id       BLOB NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id       BLOB NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'done', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    locked_until     TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_conversation ON outbox (conversation_id, state, id);

CREATE TABLE audit_log (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT,
    ip             TEXT,
    details        TEXT NOT NULL DEFAULT '{}',
    created_at     TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

-- Append-only: the audit log is never edited (tenant erasure deletes through the cascade).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
