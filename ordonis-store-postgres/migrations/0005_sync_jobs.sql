-- The repair loop's durable job: one row per integration (backfill, then reconcile runs),
-- leased like a queue row, with the listing cursor saved after every page.
CREATE TABLE ordonis.sync_jobs (
    integration_id   uuid PRIMARY KEY,
    workspace_id     text        NOT NULL,
    mode             text        NOT NULL CHECK (mode IN ('backfill', 'reconcile')),
    state            text        NOT NULL CHECK (state IN ('pending', 'processing', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_run_at      timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    cursor           jsonb       NOT NULL DEFAULT 'null',
    status           jsonb       NOT NULL,
    run              bigint      NOT NULL DEFAULT 0,
    repaired         bigint      NOT NULL DEFAULT 0,
    repaired_total   bigint      NOT NULL DEFAULT 0
);
