-- Full-text search over messages (`GET /v1/conversations?q=`): an FTS5 index of each message's
-- words (text, caption or the title of a tapped choice), kept by triggers on `messages`, so every
-- way a message goes (a contact's or a tenant's erasure, retention, a conversation's deletion)
-- takes its words out of the index in the same transaction. FTS5's `secure-delete` removes them
-- from the index's own pages at once instead of at a later merge (and `secure_delete` zeroes the
-- freed pages), so an erased message leaves no word behind. The index is derived data: exported
-- as the messages themselves.
--
-- FTS5 rows are numbered; `message_search_ids` gives each message a number that VACUUM keeps
-- (an INTEGER PRIMARY KEY), where `messages`' own rowid could be renumbered.

CREATE TABLE message_search_ids (
    rowid       INTEGER PRIMARY KEY,
    message_id  BLOB NOT NULL UNIQUE
);

CREATE VIRTUAL TABLE message_search USING fts5(body, tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search_ids (message_id) VALUES (new.id);
    INSERT INTO message_search (rowid, body) VALUES (
        last_insert_rowid(),
        coalesce(json_extract(new.content, '$.body'), json_extract(new.content, '$.text'),
                 json_extract(new.content, '$.caption'), json_extract(new.content, '$.title'), ''));
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF content ON messages BEGIN
    UPDATE message_search
       SET body = coalesce(json_extract(new.content, '$.body'), json_extract(new.content, '$.text'),
                           json_extract(new.content, '$.caption'), json_extract(new.content, '$.title'), '')
     WHERE rowid = (SELECT rowid FROM message_search_ids WHERE message_id = new.id);
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search
     WHERE rowid = (SELECT rowid FROM message_search_ids WHERE message_id = old.id);
    DELETE FROM message_search_ids WHERE message_id = old.id;
END;

INSERT INTO message_search_ids (message_id) SELECT id FROM messages ORDER BY rowid;
INSERT INTO message_search (rowid, body)
SELECT i.rowid,
       coalesce(json_extract(m.content, '$.body'), json_extract(m.content, '$.text'),
                json_extract(m.content, '$.caption'), json_extract(m.content, '$.title'), '')
  FROM message_search_ids i JOIN messages m ON m.id = i.message_id;
