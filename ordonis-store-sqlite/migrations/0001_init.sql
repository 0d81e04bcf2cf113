-- Ordonis store schema (SQLite). Times are INTEGER nanoseconds since the Unix epoch (UTC),
-- ids are 16-byte UUID BLOBs, JSON is TEXT. The migrations table is `_ordonis_migrations`.

CREATE TABLE ordonis_integrations (
    id            BLOB PRIMARY KEY,
    workspace_id  TEXT    NOT NULL,
    provider      TEXT    NOT NULL,
    config        TEXT    NOT NULL,
    -- XChaCha20-Poly1305 ciphertext (SealedSecrets); never plaintext.
    secrets       BLOB    NOT NULL,
    paused_until  INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ordonis_integrations_workspace_idx ON ordonis_integrations (workspace_id);

CREATE TABLE ordonis_webhook_events (
    id               BLOB PRIMARY KEY,
    workspace_id     TEXT    NOT NULL,
    integration_id   BLOB    NOT NULL,
    dedupe_key       TEXT    NOT NULL,
    delivery_id      TEXT,
    object_key       TEXT,
    headers          TEXT    NOT NULL,
    body             BLOB    NOT NULL,
    body_sha256      TEXT    NOT NULL,
    auth             TEXT    NOT NULL,
    received_at      INTEGER NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('pending', 'processing', 'done', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    UNIQUE (integration_id, dedupe_key)
);
CREATE INDEX ordonis_webhook_events_due_idx ON ordonis_webhook_events (received_at, id)
    WHERE state IN ('pending', 'processing');
CREATE INDEX ordonis_webhook_events_inflight_idx
    ON ordonis_webhook_events (integration_id, object_key) WHERE state = 'processing';
CREATE INDEX ordonis_webhook_events_workspace_idx
    ON ordonis_webhook_events (workspace_id, received_at, id);

CREATE TABLE ordonis_tasks (
    id           BLOB PRIMARY KEY,
    workspace_id TEXT    NOT NULL,
    revision     INTEGER NOT NULL,
    deleted      INTEGER NOT NULL DEFAULT 0,
    updated_at   INTEGER NOT NULL,
    doc          TEXT    NOT NULL
);
CREATE INDEX ordonis_tasks_workspace_idx ON ordonis_tasks (workspace_id, id);

CREATE TABLE ordonis_external_objects (
    integration_id BLOB NOT NULL,
    provider       TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    workspace_id   TEXT NOT NULL,
    task_id        BLOB NOT NULL,
    url            TEXT,
    PRIMARY KEY (integration_id, provider, external_id, object_type)
);
CREATE INDEX ordonis_external_objects_lookup_idx
    ON ordonis_external_objects (integration_id, external_id, object_type);

CREATE TABLE ordonis_outbox (
    id               BLOB PRIMARY KEY,
    workspace_id     TEXT    NOT NULL,
    task_id          BLOB    NOT NULL,
    integration_id   BLOB    NOT NULL,
    state            TEXT    NOT NULL
        CHECK (state IN ('pending', 'processing', 'done', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX ordonis_outbox_due_idx ON ordonis_outbox (created_at, id)
    WHERE state IN ('pending', 'processing');
CREATE INDEX ordonis_outbox_task_idx ON ordonis_outbox (task_id, state);
CREATE INDEX ordonis_outbox_workspace_idx ON ordonis_outbox (workspace_id, created_at, id);

CREATE TABLE ordonis_ledger_heads (
    workspace_id TEXT PRIMARY KEY,
    size         INTEGER NOT NULL
);

CREATE TABLE ordonis_vera_ledger (
    workspace_id TEXT    NOT NULL,
    idx          INTEGER NOT NULL,
    logged_at    INTEGER NOT NULL,
    task_id      BLOB    NOT NULL,
    record       TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    leaf_hash    BLOB    NOT NULL,
    PRIMARY KEY (workspace_id, idx)
);
CREATE INDEX ordonis_vera_ledger_task_idx ON ordonis_vera_ledger (workspace_id, task_id, idx);

CREATE TABLE ordonis_vera_checkpoints (
    workspace_id TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    note         TEXT    NOT NULL,
    PRIMARY KEY (workspace_id, size)
);

CREATE TRIGGER ordonis_vera_ledger_no_update BEFORE UPDATE ON ordonis_vera_ledger
BEGIN SELECT RAISE(ABORT, 'ordonis: the VERA ledger is append-only'); END;
CREATE TRIGGER ordonis_vera_ledger_no_delete BEFORE DELETE ON ordonis_vera_ledger
BEGIN SELECT RAISE(ABORT, 'ordonis: the VERA ledger is append-only'); END;
CREATE TRIGGER ordonis_vera_checkpoints_no_update BEFORE UPDATE ON ordonis_vera_checkpoints
BEGIN SELECT RAISE(ABORT, 'ordonis: VERA checkpoints are append-only'); END;
CREATE TRIGGER ordonis_vera_checkpoints_no_delete BEFORE DELETE ON ordonis_vera_checkpoints
BEGIN SELECT RAISE(ABORT, 'ordonis: VERA checkpoints are append-only'); END;
