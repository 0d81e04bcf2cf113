-- Console sign-ins, shared by every server on the database (only digests are kept: the
-- cookie's id and the admin token are never stored).
CREATE TABLE ordonis.console_sessions (
    id_digest bytea PRIMARY KEY,
    token_digest bytea NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON ordonis.console_sessions (expires_at);
