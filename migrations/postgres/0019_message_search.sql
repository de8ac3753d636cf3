-- Full-text search over messages (`GET /v1/conversations?q=`): each message's words (text,
-- caption or the title of a tapped choice) as a generated `tsvector` column with a GIN index.
-- It lives in the message's row, so it goes wherever the message goes (erasure, retention) and
-- is guarded by the same row-level security. The `simple` configuration lower-cases and keeps
-- every word, whatever the tenant's language, as SQLite's FTS5 index does.

ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, coalesce(content->>'body', content->>'text',
                                              content->>'caption', content->>'title', ''))
) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
