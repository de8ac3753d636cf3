-- Channel health (see the PostgreSQL migration).
CREATE INDEX outbox_tenant_state ON outbox (tenant_id, state, updated_at);
