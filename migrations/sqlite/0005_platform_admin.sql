-- Operators of the gateway (list and suspend tenants).
ALTER TABLE users ADD COLUMN platform_admin INTEGER NOT NULL DEFAULT 0;
