-- Task lists are indexed pages (issue 29): the columns the list filters and sorts on, each
-- task's stored sync state, and a title search index.
--
-- The sync state's inputs are kept in the row by the store, in the transaction that changes
-- them: `sync_base` (what the task itself says: out_of_scope, push_pending or in_sync),
-- `conflicts` (one bit per field whose last Set decision was a conflict, in Field::ALL
-- order) and `failures` (failed or dead pushes of the task and inbound events of its
-- objects). `sync_state` combines them in the precedence of ordonis_core's
-- SyncState::derive: out_of_scope > error > conflict > push_pending > in_sync.
ALTER TABLE ordonis_tasks ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE ordonis_tasks ADD COLUMN status TEXT NOT NULL DEFAULT '';
ALTER TABLE ordonis_tasks ADD COLUMN status_category TEXT NOT NULL DEFAULT 'todo';
ALTER TABLE ordonis_tasks ADD COLUMN assignee TEXT;
ALTER TABLE ordonis_tasks ADD COLUMN assignee_name TEXT;
ALTER TABLE ordonis_tasks ADD COLUMN sync_base TEXT NOT NULL DEFAULT 'in_sync';
ALTER TABLE ordonis_tasks ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ordonis_tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ordonis_tasks ADD COLUMN sync_state TEXT GENERATED ALWAYS AS (
    CASE
        WHEN sync_base = 'out_of_scope' THEN 'out_of_scope'
        WHEN failures > 0 THEN 'error'
        WHEN conflicts <> 0 THEN 'conflict'
        ELSE sync_base
    END) VIRTUAL;

-- Backfill from the task document and the ledger, so an upgraded database answers at once.
UPDATE ordonis_tasks SET
    title = coalesce(json_extract(doc, '$.fields.title'), ''),
    status = coalesce(json_extract(doc, '$.fields.status.name'), ''),
    status_category = coalesce(json_extract(doc, '$.fields.status.category'), 'todo'),
    assignee = json_extract(doc, '$.fields.assignee.account_id'),
    assignee_name = json_extract(doc, '$.fields.assignee.display_name'),
    sync_base = CASE
        WHEN deleted <> 0 OR coalesce(json_extract(doc, '$.out_of_scope'), 0) <> 0
            OR coalesce(json_array_length(doc, '$.external'), 0) = 0 THEN 'out_of_scope'
        WHEN EXISTS (SELECT 1 FROM json_each(doc, '$.sync') s
            WHERE coalesce(json_type(s.value, '$.want'), 'null') <> 'null'
               OR coalesce(json_array_length(s.value, '$.sent'), 0) > 0) THEN 'push_pending'
        ELSE 'in_sync'
    END;

UPDATE ordonis_tasks SET conflicts = (
    SELECT coalesce(sum(f.bit), 0)
      FROM (SELECT 'title' AS name, 1 AS bit UNION ALL SELECT 'description', 2
            UNION ALL SELECT 'status', 4 UNION ALL SELECT 'assignee', 8
            UNION ALL SELECT 'priority', 16 UNION ALL SELECT 'due_date', 32) f
     WHERE (SELECT json_extract(l.record, '$.outcome') FROM ordonis_vera_ledger l
             WHERE l.workspace_id = ordonis_tasks.workspace_id AND l.task_id = ordonis_tasks.id
               AND json_extract(l.record, '$.op') = 'set'
               AND json_extract(l.record, '$.field') = f.name
             ORDER BY l.idx DESC LIMIT 1) = 'conflict');

-- Failed or dead inbound events are found by (integration, object key): index them.
CREATE INDEX ordonis_webhook_events_failed_idx
    ON ordonis_webhook_events (integration_id, object_key) WHERE state IN ('failed', 'dead');
CREATE INDEX ordonis_external_objects_task_idx ON ordonis_external_objects (task_id, integration_id);

UPDATE ordonis_tasks SET failures =
    (SELECT count(*) FROM ordonis_outbox o
      WHERE o.task_id = ordonis_tasks.id AND o.state IN ('failed', 'dead'))
  + (SELECT count(*) FROM ordonis_external_objects m
       JOIN ordonis_webhook_events e
         ON e.integration_id = m.integration_id AND e.object_key = m.external_id
      WHERE m.task_id = ordonis_tasks.id AND e.state IN ('failed', 'dead'));

-- One index per filter, each ending in the list's order (updated_at desc, id desc).
CREATE INDEX ordonis_tasks_updated_idx ON ordonis_tasks (workspace_id, updated_at, id);
CREATE INDEX ordonis_tasks_status_idx ON ordonis_tasks (workspace_id, status, updated_at, id);
CREATE INDEX ordonis_tasks_assignee_idx ON ordonis_tasks (workspace_id, assignee, updated_at, id);
CREATE INDEX ordonis_tasks_sync_state_idx
    ON ordonis_tasks (workspace_id, sync_state, updated_at, id);

-- Title search: an external-content FTS5 table with the trigram tokenizer (case-insensitive
-- substrings of three characters or more), kept in step with the rows by triggers.
CREATE VIRTUAL TABLE ordonis_tasks_fts USING fts5(
    title, content = 'ordonis_tasks', content_rowid = 'rowid', tokenize = 'trigram');
INSERT INTO ordonis_tasks_fts (ordonis_tasks_fts) VALUES ('rebuild');
CREATE TRIGGER ordonis_tasks_fts_insert AFTER INSERT ON ordonis_tasks BEGIN
    INSERT INTO ordonis_tasks_fts (rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER ordonis_tasks_fts_delete AFTER DELETE ON ordonis_tasks BEGIN
    INSERT INTO ordonis_tasks_fts (ordonis_tasks_fts, rowid, title)
        VALUES ('delete', old.rowid, old.title);
END;
CREATE TRIGGER ordonis_tasks_fts_update AFTER UPDATE OF title ON ordonis_tasks
    WHEN old.title IS NOT new.title BEGIN
    INSERT INTO ordonis_tasks_fts (ordonis_tasks_fts, rowid, title)
        VALUES ('delete', old.rowid, old.title);
    INSERT INTO ordonis_tasks_fts (rowid, title) VALUES (new.rowid, new.title);
END;
