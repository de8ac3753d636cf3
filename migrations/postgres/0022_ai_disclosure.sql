-- When the coach first told the contact of a conversation that it is an AI (EU AI Act art. 50):
-- once per conversation, that is per contact and channel.

ALTER TABLE conversations ADD COLUMN ai_disclosed_at timestamptz;
