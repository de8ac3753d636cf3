-- Progress: the answers to a program's progress questions (one per step run at most), and the
-- milestones reached (each sent once per enrollment: the row is written in the transaction
-- that queues its message). Personal data: erased with the contact (cascade), in the contact's
-- export (`progress`), pruned by retention by when an answer was recorded.

CREATE TABLE progress_entries (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id     uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    enrollment_id  uuid NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    program_id     uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    seq            integer NOT NULL,
    step_id        text NOT NULL,
    key            text NOT NULL,
    kind           text NOT NULL,
    value          double precision NOT NULL,
    counts         boolean NOT NULL,
    local_date     date NOT NULL,
    answer         text NOT NULL,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (enrollment_id, seq)
);
CREATE INDEX progress_entries_contact ON progress_entries (tenant_id, contact_id, recorded_at);
CREATE INDEX progress_entries_program ON progress_entries (program_id, key);
CREATE INDEX progress_entries_tenant_recorded ON progress_entries (tenant_id, recorded_at);

CREATE TABLE progress_milestones (
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    contact_id     uuid NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    enrollment_id  uuid NOT NULL REFERENCES enrollments(id) ON DELETE CASCADE,
    program_id     uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    milestone      text NOT NULL,
    message_id     uuid,
    reached_at     timestamptz NOT NULL,
    PRIMARY KEY (enrollment_id, milestone)
);
CREATE INDEX progress_milestones_program ON progress_milestones (program_id);
CREATE INDEX progress_milestones_contact ON progress_milestones (tenant_id, contact_id);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['progress_entries', 'progress_milestones']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I TO coach_app
                        USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant())', t);
        EXECUTE format('CREATE POLICY worker_all ON %I TO coach_worker USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO coach_app, coach_worker', t);
    END LOOP;
END $$;
