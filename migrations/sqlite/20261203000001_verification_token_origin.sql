-- Where each pending verification token came from, so an operator can tell Notion's
-- handshake from a stranger's (anyone who can reach the webhook URL can send one).
ALTER TABLE verification_tokens ADD COLUMN peer TEXT;
ALTER TABLE verification_tokens ADD COLUMN forwarded_for TEXT;
