-- Ordonis store schema (PostgreSQL). Everything lives in the `ordonis` schema; the migrations
-- table is `ordonis._migrations`, so nothing collides with the host application's tables.

CREATE TABLE ordonis.integrations (
    id            uuid PRIMARY KEY,
    workspace_id  text        NOT NULL,
    provider      text        NOT NULL,
    config        jsonb       NOT NULL,
    -- XChaCha20-Poly1305 ciphertext (SealedSecrets); never plaintext.
    secrets       bytea       NOT NULL,
    paused_until  timestamptz,
    created_at    timestamptz NOT NULL
);
CREATE INDEX integrations_workspace_idx ON ordonis.integrations (workspace_id);

CREATE TABLE ordonis.webhook_events (
    id               uuid PRIMARY KEY,
    workspace_id     text        NOT NULL,
    integration_id   uuid        NOT NULL,
    dedupe_key       text        NOT NULL,
    delivery_id      text,
    object_key       text,
    headers          jsonb       NOT NULL,
    body             bytea       NOT NULL,
    body_json        jsonb,
    body_sha256      text        NOT NULL,
    auth             text        NOT NULL,
    received_at      timestamptz NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('pending', 'processing', 'done', 'failed', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    CONSTRAINT webhook_events_dedupe_uq UNIQUE (integration_id, dedupe_key)
);
CREATE INDEX webhook_events_due_idx ON ordonis.webhook_events (received_at, id)
    WHERE state IN ('pending', 'processing');
CREATE INDEX webhook_events_inflight_idx ON ordonis.webhook_events (integration_id, object_key)
    WHERE state = 'processing';
CREATE INDEX webhook_events_workspace_idx ON ordonis.webhook_events (workspace_id, received_at DESC, id DESC);

CREATE TABLE ordonis.tasks (
    id           uuid PRIMARY KEY,
    workspace_id text        NOT NULL,
    revision     bigint      NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL,
    -- The whole task (fields, per-field sync state, external refs) as serde JSON.
    doc          jsonb       NOT NULL
);
CREATE INDEX tasks_workspace_idx ON ordonis.tasks (workspace_id, id);

CREATE TABLE ordonis.external_objects (
    integration_id uuid NOT NULL,
    provider       text NOT NULL,
    external_id    text NOT NULL,
    object_type    text NOT NULL,
    workspace_id   text NOT NULL,
    task_id        uuid NOT NULL,
    url            text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, provider, external_id, object_type)
);
CREATE INDEX external_objects_lookup_idx
    ON ordonis.external_objects (integration_id, external_id, object_type);

CREATE TABLE ordonis.outbox (
    id               uuid PRIMARY KEY,
    workspace_id     text        NOT NULL,
    task_id          uuid        NOT NULL,
    integration_id   uuid        NOT NULL,
    state            text        NOT NULL
        CHECK (state IN ('pending', 'processing', 'done', 'failed', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL
);
CREATE INDEX outbox_due_idx ON ordonis.outbox (created_at, id)
    WHERE state IN ('pending', 'processing');
CREATE INDEX outbox_task_idx ON ordonis.outbox (task_id) WHERE state IN ('pending', 'processing');
CREATE INDEX outbox_workspace_idx ON ordonis.outbox (workspace_id, created_at DESC, id DESC);

-- VERA: one append-only log per workspace.
CREATE TABLE ordonis.ledger_heads (
    workspace_id text PRIMARY KEY,
    size         bigint NOT NULL
);

CREATE TABLE ordonis.vera_ledger (
    workspace_id text        NOT NULL,
    idx          bigint      NOT NULL,
    logged_at    timestamptz NOT NULL,
    task_id      uuid        NOT NULL,
    record       text        NOT NULL,
    bytes        bytea       NOT NULL,
    leaf_hash    bytea       NOT NULL,
    PRIMARY KEY (workspace_id, idx)
);
CREATE INDEX vera_ledger_task_idx ON ordonis.vera_ledger (workspace_id, task_id, idx);

CREATE TABLE ordonis.vera_checkpoints (
    workspace_id text        NOT NULL,
    size         bigint      NOT NULL,
    note         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, size)
);

CREATE FUNCTION ordonis.reject_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ordonis: % on % is not allowed: the VERA ledger is append-only',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER vera_ledger_append_only
    BEFORE UPDATE OR DELETE ON ordonis.vera_ledger
    FOR EACH ROW EXECUTE FUNCTION ordonis.reject_ledger_change();
CREATE TRIGGER vera_ledger_no_truncate
    BEFORE TRUNCATE ON ordonis.vera_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ordonis.reject_ledger_change();
CREATE TRIGGER vera_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON ordonis.vera_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ordonis.reject_ledger_change();
CREATE TRIGGER vera_checkpoints_no_truncate
    BEFORE TRUNCATE ON ordonis.vera_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ordonis.reject_ledger_change();
