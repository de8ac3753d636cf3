-- Every message gets its conversation's next sequence number (1, 2, 3...), assigned in the
-- transaction that stores it. The widget resumes from the last number a visitor saw, so the
-- numbers must follow commit order within a conversation: bumping the conversation's counter
-- locks its row until commit, so a second writer of the same conversation waits and numbers
-- after it. (An insert skipped by ON CONFLICT leaves a gap; readers only ask for "after N".)
ALTER TABLE conversations ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN seq BIGINT;
WITH numbered AS (
    SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY id) AS n FROM messages
)
UPDATE messages m SET seq = numbered.n FROM numbered WHERE numbered.id = m.id;
UPDATE conversations c SET last_seq = (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id);
CREATE UNIQUE INDEX messages_sequence ON messages (conversation_id, seq);
-- Widget visitors find their conversation by their visitor id.
CREATE INDEX conversations_external ON conversations (tenant_id, channel_id, external_id);

CREATE FUNCTION messages_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET last_seq = last_seq + 1 WHERE id = NEW.conversation_id
        RETURNING last_seq INTO NEW.seq;
    IF NEW.seq IS NULL THEN
        RAISE EXCEPTION 'conversation % is not visible to this role', NEW.conversation_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER messages_sequence BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_sequence();
