-- The repair loop's durable job: one row per integration (backfill, then reconcile runs),
-- leased like a queue row, with the listing cursor saved after every page.
CREATE TABLE ordonis_sync_jobs (
    integration_id   BLOB PRIMARY KEY,
    workspace_id     TEXT    NOT NULL,
    mode             TEXT    NOT NULL CHECK (mode IN ('backfill', 'reconcile')),
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'processing', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_run_at      INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    cursor           TEXT    NOT NULL DEFAULT 'null',
    status           TEXT    NOT NULL,
    run              INTEGER NOT NULL DEFAULT 0,
    repaired         INTEGER NOT NULL DEFAULT 0,
    repaired_total   INTEGER NOT NULL DEFAULT 0
);
