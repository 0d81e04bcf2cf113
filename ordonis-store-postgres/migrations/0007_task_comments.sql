-- The conversation on tasks: one row per comment (CollabHub's or a provider's), its whole
-- state as JSON like tasks. One row per provider comment: (task, integration, external id)
-- is unique (NULLs are distinct: comments not yet in a provider never collide).
CREATE TABLE ordonis.task_comments (
    id             uuid        PRIMARY KEY,
    workspace_id   text        NOT NULL,
    task_id        uuid        NOT NULL,
    -- The nil UUID when the comment syncs nowhere.
    integration_id uuid        NOT NULL,
    external_id    text,
    revision       bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    doc            jsonb       NOT NULL,
    CONSTRAINT task_comments_external_uq UNIQUE (task_id, integration_id, external_id)
);
CREATE INDEX task_comments_task_idx
    ON ordonis.task_comments (workspace_id, task_id, created_at, id);
