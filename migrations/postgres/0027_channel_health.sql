-- Channel health (`GET /v1/channels/health`, the team's alert e-mail): a tenant's recent dead
-- letters and sends per channel, read through an index instead of a scan of every outbox row.
-- No new data is stored.
CREATE INDEX outbox_tenant_state ON outbox (tenant_id, state, updated_at);
