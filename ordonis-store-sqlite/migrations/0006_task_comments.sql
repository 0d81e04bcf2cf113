-- The conversation on tasks: one row per comment (CollabHub's or a provider's), its whole
-- state as JSON like tasks. One row per provider comment: (task, integration, external id)
-- is unique (NULLs are distinct: comments not yet in a provider never collide).
CREATE TABLE ordonis_task_comments (
    id             BLOB    PRIMARY KEY,
    workspace_id   TEXT    NOT NULL,
    task_id        BLOB    NOT NULL,
    -- The nil UUID when the comment syncs nowhere.
    integration_id BLOB    NOT NULL,
    external_id    TEXT,
    revision       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    doc            TEXT    NOT NULL,
    UNIQUE (task_id, integration_id, external_id)
);
CREATE INDEX ordonis_task_comments_task_idx
    ON ordonis_task_comments (workspace_id, task_id, created_at, id);
