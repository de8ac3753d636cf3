-- What a creator knows of a contact beyond a channel's identity (CSV import): time zone,
-- language, when consent to proactive messages was recorded, and custom fields. Columns of the
-- contact's row, so the contact's export lists them and its erasure takes them.

ALTER TABLE contacts ADD COLUMN time_zone TEXT;
ALTER TABLE contacts ADD COLUMN language TEXT;
ALTER TABLE contacts ADD COLUMN consent_at TEXT;
ALTER TABLE contacts ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
