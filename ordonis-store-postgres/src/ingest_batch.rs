//! Group commit for webhook ingest: concurrent single-event `insert_events` calls share one
//! multi-row `INSERT` and one commit.
//!
//! Every caller queues its event, then waits for one of [`FLUSHERS`] flush slots (FIFO).
//! Whoever gets one takes the whole queue, writes it in one statement, and hands each caller
//! its outcome; a caller whose event another slot already took just waits for it. Nothing
//! waits on a timer: with one writer a batch is one event (one round trip, as without
//! batching); with many, each commit carries the events that arrived while the previous ones
//! were flushing.

use std::collections::HashMap;
use std::sync::Mutex;

use ordonis_core::store::{InsertOutcome, NewInboxEvent};
use ordonis_core::{EventId, StoreError};
use sqlx::types::Json;
use sqlx::{PgPool, QueryBuilder};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{body_json, map_err};

/// Batches written at once. One gives the largest batches; two measured no faster on two
/// cores (the statement is CPU-bound in PostgreSQL, not waiting on the WAL flush).
const FLUSHERS: usize = 1;

/// At most this many events per statement (13 parameters each, far below PostgreSQL's 65,535).
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

/// The queue and the flush lock of one store.
#[derive(Debug)]
pub(crate) struct IngestBatcher {
    queue: Mutex<Vec<(NewInboxEvent, Reply)>>,
    slots: tokio::sync::Semaphore,
}

impl Default for IngestBatcher {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            slots: tokio::sync::Semaphore::new(FLUSHERS),
        }
    }
}

impl IngestBatcher {
    /// Inserts one event, possibly together with other callers' events.
    pub(crate) async fn insert(
        &self,
        pool: &PgPool,
        ev: NewInboxEvent,
    ) -> Result<InsertOutcome, StoreError> {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| StoreError::Backend("ingest queue poisoned".to_owned()))?
            .push((ev, tx));
        let slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("ingest batcher closed".to_owned()))?;
        if let Ok(outcome) = rx.try_recv() {
            return outcome; // an earlier flush wrote it
        }
        let batch: Vec<(NewInboxEvent, Reply)> = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| StoreError::Backend("ingest queue poisoned".to_owned()))?;
            let n = q.len().min(MAX_BATCH);
            q.drain(..n).collect()
        };
        if !batch.is_empty() {
            flush(pool, batch).await;
        }
        drop(slot); // ours may be in a batch another slot is still writing
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Backend("ingest batch dropped".to_owned())))
    }
}

async fn flush(pool: &PgPool, batch: Vec<(NewInboxEvent, Reply)>) {
    let (events, replies): (Vec<NewInboxEvent>, Vec<Reply>) = batch.into_iter().unzip();
    match insert_many(pool, &events).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// One multi-row insert (autocommit), then the ids of the rows that already held a key.
async fn insert_many(
    pool: &PgPool,
    events: &[NewInboxEvent],
) -> Result<Vec<Result<InsertOutcome, StoreError>>, StoreError> {
    let mut q = QueryBuilder::new(
        "INSERT INTO ordonis.webhook_events
           (id, workspace_id, integration_id, dedupe_key, delivery_id, object_key, headers, body,
            body_json, body_sha256, auth, state, last_error, received_at, attempts,
            next_attempt_at) ",
    );
    q.push_values(events, |mut row, ev| {
        row.push_bind(ev.id.0)
            .push_bind(ev.workspace_id.as_str())
            .push_bind(ev.integration_id.0)
            .push_bind(&ev.dedupe_key)
            .push_bind(&ev.delivery_id)
            .push_bind(&ev.object_key)
            .push_bind(Json(&ev.headers))
            .push_bind(ev.body.as_ref())
            .push_bind(body_json(&ev.body))
            .push_bind(&ev.body_sha256)
            .push_bind(&ev.auth)
            .push_bind(ev.state.as_str())
            .push_bind(&ev.note)
            .push_unseparated(", clock_timestamp(), 0, clock_timestamp()");
    });
    q.push(" ON CONFLICT (integration_id, dedupe_key) DO NOTHING RETURNING id");
    let inserted: Vec<Uuid> = q
        .build_query_scalar()
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();

    // Keys that were not inserted belong to rows written before (or earlier in this batch).
    let missing: Vec<&NewInboxEvent> = events
        .iter()
        .filter(|e| !inserted.contains(&e.id.0))
        .collect();
    let mut holders: HashMap<(Uuid, &str), Uuid> = HashMap::new();
    if !missing.is_empty() {
        let integrations: Vec<Uuid> = missing.iter().map(|e| e.integration_id.0).collect();
        let keys: Vec<&str> = missing.iter().map(|e| e.dedupe_key.as_str()).collect();
        let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT w.id, w.integration_id, w.dedupe_key
               FROM ordonis.webhook_events w
               JOIN UNNEST($1::uuid[], $2::text[]) AS k(integration_id, dedupe_key)
                 ON w.integration_id = k.integration_id AND w.dedupe_key = k.dedupe_key",
        )
        .bind(&integrations)
        .bind(&keys)
        .fetch_all(pool)
        .await
        .map_err(map_err)?;
        for (id, integration, key) in rows {
            if let Some(e) = missing
                .iter()
                .find(|e| e.integration_id.0 == integration && e.dedupe_key == key)
            {
                holders.insert((integration, e.dedupe_key.as_str()), id);
            }
        }
    }
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if inserted.contains(&e.id.0) {
            out.push(Ok(InsertOutcome::Inserted(e.id)));
        } else if let Some(id) = holders.get(&(e.integration_id.0, e.dedupe_key.as_str())) {
            out.push(Ok(InsertOutcome::Duplicate(EventId(*id))));
        } else {
            // Held by a transaction that committed after our statement's snapshot: one more
            // look finds it.
            let mut conn = pool.acquire().await.map_err(map_err)?;
            out.push(crate::insert_event(&mut conn, e).await);
        }
    }
    Ok(out)
}
