-- Coaching programs: versioned step sequences, the contacts enrolled in them, one row per step
-- run (the guarantee that a step reaches a contact at most once), and opt-outs.
--
-- A program's steps live in `program_versions`; an enrollment keeps the version it started on,
-- so editing a program never changes a running enrollment under its feet.
CREATE TABLE programs (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name        text NOT NULL,
    version     integer NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX programs_tenant ON programs (tenant_id, created_at);

CREATE TABLE program_versions (
    program_id  BLOB NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    version     integer NOT NULL,
    definition  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (program_id, version)
);

-- `seq` counts the steps run so far; the job that runs the next one has the dedup key
-- "<enrollment>:<seq + 1>", so each run exists once however often it is scheduled.
CREATE TABLE enrollments (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    program_id       BLOB NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    version          integer NOT NULL,
    contact_id       BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    conversation_id  BLOB NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    state            text NOT NULL CHECK (state IN ('active', 'completed', 'opted_out', 'cancelled')),
    step_id          text,
    seq              integer NOT NULL DEFAULT 0,
    time_zone        text NOT NULL,
    variables        TEXT NOT NULL DEFAULT '{}',
    source           text NOT NULL,
    enrolled_at      TEXT NOT NULL,
    ended_at         TEXT,
    updated_at       TEXT NOT NULL,
    UNIQUE (tenant_id, program_id, contact_id)
);
CREATE INDEX enrollments_contact ON enrollments (tenant_id, contact_id, state);
CREATE INDEX enrollments_program ON enrollments (program_id, state);

CREATE TABLE program_sends (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    enrollment_id  BLOB NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    program_id     BLOB NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    seq            integer NOT NULL,
    step_id        text NOT NULL,
    day            integer NOT NULL,
    channel_id     BLOB NOT NULL,
    message_id     uuid,
    mode           text NOT NULL CHECK (mode IN ('free_form', 'template', 'skipped')),
    reason         text,
    due_at         TEXT NOT NULL,
    sent_at        TEXT NOT NULL,
    replied_at     TEXT,
    reply          text,
    UNIQUE (enrollment_id, seq)
);
CREATE INDEX program_sends_program ON program_sends (program_id, step_id);

CREATE TABLE opt_outs (
    tenant_id   BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id  BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    source      text NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, contact_id)
);

-- A contact's conversations (enrolling reaches each contact where they last wrote).
CREATE INDEX conversations_contact ON conversations (tenant_id, contact_id, last_message_at);

-- A conversation's latest message from the contact (the window, the pause before a step),
-- found by one backward index step whatever the table's size.
CREATE INDEX messages_inbound ON messages (conversation_id, direction, id);

-- Jobs that must exist once per subject (a program step of one enrollment) carry a key.
ALTER TABLE jobs ADD COLUMN dedup_key text;
CREATE UNIQUE INDEX jobs_dedup ON jobs (tenant_id, kind, dedup_key);

