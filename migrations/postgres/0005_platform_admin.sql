-- Operators of the gateway (list and suspend tenants).
ALTER TABLE users ADD COLUMN platform_admin boolean NOT NULL DEFAULT false;
