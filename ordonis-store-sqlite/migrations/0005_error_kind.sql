-- The kind of a queue row's last failure (access_denied, temporary, ...), stored beside its
-- message so views select rows by kind, never by message text.
ALTER TABLE ordonis_webhook_events ADD COLUMN error_kind TEXT;
ALTER TABLE ordonis_outbox ADD COLUMN error_kind TEXT;
