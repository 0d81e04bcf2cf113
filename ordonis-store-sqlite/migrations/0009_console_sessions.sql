-- Console sign-ins, shared by every server on the database (only digests are kept: the
-- cookie's id and the admin token are never stored).
CREATE TABLE ordonis_console_sessions (
    id_digest BLOB PRIMARY KEY,
    token_digest BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ordonis_console_sessions_expiry ON ordonis_console_sessions (expires_at);
