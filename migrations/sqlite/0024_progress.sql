-- Progress answers and milestones reached (see the PostgreSQL migration).

CREATE TABLE progress_entries (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id     BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    enrollment_id  BLOB NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    program_id     BLOB NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    step_id        TEXT NOT NULL,
    key            TEXT NOT NULL,
    kind           TEXT NOT NULL,
    value          REAL NOT NULL,
    counts         BOOLEAN NOT NULL,
    local_date     TEXT NOT NULL,
    answer         TEXT NOT NULL,
    recorded_at    TEXT NOT NULL,
    UNIQUE (enrollment_id, seq)
);
CREATE INDEX progress_entries_contact ON progress_entries (tenant_id, contact_id, recorded_at);
CREATE INDEX progress_entries_program ON progress_entries (program_id, key);
CREATE INDEX progress_entries_tenant_recorded ON progress_entries (tenant_id, recorded_at);

CREATE TABLE progress_milestones (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id     BLOB NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    enrollment_id  BLOB NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    program_id     BLOB NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    milestone      TEXT NOT NULL,
    message_id     BLOB,
    reached_at     TEXT NOT NULL,
    PRIMARY KEY (enrollment_id, milestone)
);
CREATE INDEX progress_milestones_program ON progress_milestones (program_id);
CREATE INDEX progress_milestones_contact ON progress_milestones (tenant_id, contact_id);
