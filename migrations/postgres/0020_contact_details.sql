-- What a creator knows of a contact beyond a channel's identity (CSV import): time zone,
-- language, when consent to proactive messages was recorded, and custom fields. Columns of the
-- contact's row, so the contact's export lists them, its erasure takes them, and its row-level
-- security guards them.

ALTER TABLE contacts
    ADD COLUMN time_zone text,
    ADD COLUMN language text,
    ADD COLUMN consent_at timestamptz,
    ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}'::jsonb;
