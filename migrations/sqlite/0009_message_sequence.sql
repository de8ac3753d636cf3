-- Every message gets its conversation's next sequence number (1, 2, 3...), assigned in the
-- transaction that stores it. The widget resumes from the last number a visitor saw, so the
-- numbers must follow commit order within a conversation: SQLite has one writer, so a trigger
-- that bumps the conversation's counter is enough.
ALTER TABLE conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seq INTEGER;
UPDATE messages SET seq = (
    SELECT COUNT(*) FROM messages m WHERE m.conversation_id = messages.conversation_id AND m.id <= messages.id
);
UPDATE conversations SET last_seq = (
    SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id
);
CREATE UNIQUE INDEX messages_sequence ON messages (conversation_id, seq);
-- Widget visitors find their conversation by their visitor id.
CREATE INDEX conversations_external ON conversations (tenant_id, channel_id, external_id);
CREATE TRIGGER messages_sequence AFTER INSERT ON messages
BEGIN
    UPDATE conversations SET last_seq = last_seq + 1 WHERE id = NEW.conversation_id;
    UPDATE messages SET seq = (SELECT last_seq FROM conversations WHERE id = NEW.conversation_id)
     WHERE rowid = NEW.rowid;
END;
