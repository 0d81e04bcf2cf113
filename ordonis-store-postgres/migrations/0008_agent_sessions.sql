-- Agent sessions: one row per session, its whole state as JSON (its activities' contents
-- are in the ledger). `state` and `last_activity_at` are columns for the stale sweep.
CREATE TABLE ordonis.agent_sessions (
    id               uuid        PRIMARY KEY,
    workspace_id     text        NOT NULL,
    task_id          uuid        NOT NULL,
    revision         bigint      NOT NULL,
    state            text        NOT NULL,
    created_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    doc              jsonb       NOT NULL
);
CREATE INDEX agent_sessions_task_idx
    ON ordonis.agent_sessions (workspace_id, task_id, created_at, id);
CREATE INDEX agent_sessions_idle_idx
    ON ordonis.agent_sessions (last_activity_at, id)
    WHERE state IN ('active', 'awaiting_input');
