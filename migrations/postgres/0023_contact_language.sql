-- The language the gateway detected in a contact's messages (a BCP 47 tag); `language` (set by
-- the team or an import) overrides it. A column of the contact's row: exported and erased with
-- them.

ALTER TABLE contacts ADD COLUMN detected_language TEXT;
