-- A webhook row holds its ~2 KB body twice (the exact bytes, for signatures, and JSONB), so
-- at ~4-5 KB it crossed the 2 KB TOAST threshold: every insert compressed and moved values
-- out of line (heap_toast_insert_or_update was ~15% of PostgreSQL's ingest CPU in a perf
-- profile of the load benchmark). Rows up to a page stay inline; larger bodies are still
-- toasted. Task documents (fields plus per-field sync state) get the same treatment.
ALTER TABLE ordonis.webhook_events SET (toast_tuple_target = 8160);
ALTER TABLE ordonis.tasks SET (toast_tuple_target = 8160);
