-- Foundation schema (PostgreSQL), run by the schema owner.
--
-- Tenancy: every tenant-owned table has row-level security ENABLED and FORCED. Two group roles
-- (NOLOGIN) hold the privileges:
--   coach_app     serves requests; sees only the rows of the tenant set per transaction with
--                 set_config('app.tenant_id', $1, true);
--   coach_worker  background work that must see every tenant (outbox, jobs, retention).
-- The gateway logs in as a role that is neither owner nor superuser, member of both groups with
-- NOINHERIT, and switches with set_config('role', ..., true) inside each transaction
-- (see README, "PostgreSQL").

DO $$
BEGIN
    CREATE ROLE coach_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE coach_worker NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

CREATE FUNCTION app_tenant() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'active',
    created_at  timestamptz NOT NULL
);

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE channels (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    name        text NOT NULL,
    config      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX channels_tenant ON channels (tenant_id);

CREATE TABLE contacts (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    display_name  text,
    created_at    timestamptz NOT NULL
);
CREATE INDEX contacts_tenant ON contacts (tenant_id);

CREATE TABLE contact_identities (
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id   uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    external_id  text NOT NULL,
    contact_id   uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    username     text,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, channel_id, external_id)
);

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id       uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id       uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    external_id      text NOT NULL,
    status           text NOT NULL DEFAULT 'open',
    last_message_at  timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    UNIQUE (tenant_id, channel_id, contact_id)
);
CREATE INDEX conversations_recent ON conversations (tenant_id, last_message_at DESC);

CREATE TABLE messages (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id           uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    conversation_id      uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id           uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    direction            text NOT NULL CHECK (direction IN ('in', 'out')),
    dedup_key            text,
    provider_message_id  text,
    content              jsonb NOT NULL,
    reply_to             uuid,
    status_rank          smallint,
    error_code           text,
    error_title          text,
    provider_ts          timestamptz,
    created_at           timestamptz NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_provider_id ON messages (tenant_id, channel_id, provider_message_id);

CREATE TABLE message_status (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id           uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    dedup_key            text NOT NULL,
    provider_message_id  text NOT NULL,
    status_rank          smallint NOT NULL,
    error_code           text,
    error_title          text,
    provider_ts          timestamptz NOT NULL,
    created_at           timestamptz NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);
CREATE INDEX message_status_provider_id ON message_status (tenant_id, channel_id, provider_message_id);

CREATE TABLE unknown_events (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id  uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    dedup_key   text NOT NULL,
    kind        text NOT NULL,
    sender      text,
    raw         jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (tenant_id, channel_id, dedup_key)
);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    kind             text NOT NULL,
    message_id       uuid,
    payload          jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'done', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    locked_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (tenant_id, kind, message_id)
);
CREATE INDEX jobs_due ON jobs (state, kind, next_attempt_at);

CREATE TABLE outbox (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    channel_id       uuid NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id       uuid NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    kind             text NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'inflight', 'done', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    locked_until     timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_conversation ON outbox (conversation_id, state, id);

CREATE TABLE audit_log (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    actor          text NOT NULL,
    action         text NOT NULL,
    resource_type  text NOT NULL,
    resource_id    text,
    ip             text,
    details        jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

-- Row-level security on every tenant-owned table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['channels', 'contacts', 'contact_identities', 'conversations',
        'messages', 'message_status', 'unknown_events', 'jobs', 'outbox', 'audit_log',
        'memberships']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO coach_app
                        USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('CREATE POLICY worker_all ON %I TO coach_worker USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

-- A tenant sees its own row; workers see all.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants TO coach_app USING (id = app_tenant()) WITH CHECK (id = app_tenant());
CREATE POLICY worker_all ON tenants TO coach_worker USING (true) WITH CHECK (true);

-- Privileges. The audit log is append-only for the serving role.
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO coach_app, coach_worker', current_schema());
END $$;
DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO coach_app, coach_worker', current_schema());
    REVOKE UPDATE, DELETE ON audit_log FROM coach_app;
    GRANT EXECUTE ON FUNCTION app_tenant() TO coach_app, coach_worker;
END $$;
-- users are global (login happens before a tenant is known): served through the worker role only.
REVOKE ALL ON users FROM coach_app;
