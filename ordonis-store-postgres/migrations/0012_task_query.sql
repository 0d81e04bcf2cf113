-- Task lists are indexed pages (issue 29): the columns the list filters and sorts on, each
-- task's stored sync state, and a trigram index for the title search.
--
-- The sync state's inputs are kept in the row by the store, in the transaction that changes
-- them: `sync_base` (what the task itself says: out_of_scope, push_pending or in_sync),
-- `conflicts` (one bit per field whose last Set decision was a conflict, in Field::ALL
-- order) and `failures` (failed or dead pushes of the task and inbound events of its
-- objects). `sync_state` combines them in the precedence of ordonis_core's
-- SyncState::derive: out_of_scope > error > conflict > push_pending > in_sync.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE ordonis.tasks
    ADD COLUMN title text NOT NULL DEFAULT '',
    ADD COLUMN status text NOT NULL DEFAULT '',
    ADD COLUMN status_category text NOT NULL DEFAULT 'todo',
    ADD COLUMN assignee text,
    ADD COLUMN assignee_name text,
    ADD COLUMN sync_base text NOT NULL DEFAULT 'in_sync',
    ADD COLUMN conflicts bigint NOT NULL DEFAULT 0,
    ADD COLUMN failures bigint NOT NULL DEFAULT 0;

-- Backfill from the task document and the ledger, so an upgraded database answers at once.
UPDATE ordonis.tasks SET
    title = coalesce(doc #>> '{fields,title}', ''),
    status = coalesce(doc #>> '{fields,status,name}', ''),
    status_category = coalesce(doc #>> '{fields,status,category}', 'todo'),
    assignee = doc #>> '{fields,assignee,account_id}',
    assignee_name = doc #>> '{fields,assignee,display_name}',
    sync_base = CASE
        WHEN deleted OR coalesce((doc ->> 'out_of_scope')::boolean, false)
            OR coalesce(jsonb_array_length(doc -> 'external'), 0) = 0 THEN 'out_of_scope'
        WHEN EXISTS (SELECT 1 FROM jsonb_each(coalesce(doc -> 'sync', '{}'::jsonb)) s
            WHERE coalesce(jsonb_typeof(s.value -> 'want'), 'null') <> 'null'
               OR coalesce(jsonb_array_length(s.value -> 'sent'), 0) > 0) THEN 'push_pending'
        ELSE 'in_sync'
    END;

UPDATE ordonis.tasks t SET conflicts = (
    SELECT coalesce(sum(f.bit), 0)
      FROM (VALUES ('title', 1), ('description', 2), ('status', 4), ('assignee', 8),
                   ('priority', 16), ('due_date', 32)) AS f (name, bit)
     WHERE (SELECT l.record::jsonb ->> 'outcome' FROM ordonis.vera_ledger l
             WHERE l.workspace_id = t.workspace_id AND l.task_id = t.id
               AND l.record::jsonb ->> 'op' = 'set' AND l.record::jsonb ->> 'field' = f.name
             ORDER BY l.idx DESC LIMIT 1) = 'conflict');

-- Failed or dead inbound events are found by (integration, object key): index them.
CREATE INDEX webhook_events_failed_idx
    ON ordonis.webhook_events (integration_id, object_key) WHERE state IN ('failed', 'dead');
CREATE INDEX outbox_failed_idx ON ordonis.outbox (task_id) WHERE state IN ('failed', 'dead');
CREATE INDEX external_objects_task_idx ON ordonis.external_objects (task_id, integration_id);

UPDATE ordonis.tasks t SET failures =
    (SELECT count(*) FROM ordonis.outbox o
      WHERE o.task_id = t.id AND o.state IN ('failed', 'dead'))
  + (SELECT count(*) FROM ordonis.external_objects m
       JOIN ordonis.webhook_events e
         ON e.integration_id = m.integration_id AND e.object_key = m.external_id
      WHERE m.task_id = t.id AND e.state IN ('failed', 'dead'));

ALTER TABLE ordonis.tasks ADD COLUMN sync_state text GENERATED ALWAYS AS (
    CASE
        WHEN sync_base = 'out_of_scope' THEN 'out_of_scope'
        WHEN failures > 0 THEN 'error'
        WHEN conflicts <> 0 THEN 'conflict'
        ELSE sync_base
    END) STORED;

-- One index per filter, each ending in the list's order (updated_at desc, id desc).
CREATE INDEX tasks_updated_idx ON ordonis.tasks (workspace_id, updated_at DESC, id DESC);
CREATE INDEX tasks_status_idx ON ordonis.tasks (workspace_id, status, updated_at DESC, id DESC);
CREATE INDEX tasks_assignee_idx
    ON ordonis.tasks (workspace_id, assignee, updated_at DESC, id DESC);
CREATE INDEX tasks_sync_state_idx
    ON ordonis.tasks (workspace_id, sync_state, updated_at DESC, id DESC);
-- Title search: `title ILIKE '%q%'` uses it for three characters or more.
CREATE INDEX tasks_title_trgm_idx ON ordonis.tasks USING gin (title gin_trgm_ops);
