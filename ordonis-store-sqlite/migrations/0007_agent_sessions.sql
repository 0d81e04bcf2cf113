-- Agent sessions: one row per session, its whole state as JSON (its activities' contents
-- are in the ledger). `state` and `last_activity_at` are columns for the stale sweep.
CREATE TABLE ordonis_agent_sessions (
    id               BLOB    PRIMARY KEY,
    workspace_id     TEXT    NOT NULL,
    task_id          BLOB    NOT NULL,
    revision         INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL,
    doc              TEXT    NOT NULL
);
CREATE INDEX ordonis_agent_sessions_task_idx
    ON ordonis_agent_sessions (workspace_id, task_id, created_at, id);
CREATE INDEX ordonis_agent_sessions_idle_idx
    ON ordonis_agent_sessions (last_activity_at, id)
    WHERE state IN ('active', 'awaiting_input');
