//! Appending deliveries: one multi-row `INSERT … ON CONFLICT DO NOTHING`, then one look-up of
//! the rows that already held the keys, and group commit for concurrent single-event calls.
//!
//! Group commit: every caller queues its event, then waits for the flush slot (FIFO).
//! Whoever gets it takes the whole queue, writes it as one statement, and hands each caller
//! its outcome; a caller whose event an earlier flush took just reads its answer. Nothing
//! waits on a timer: with one writer a batch is one event (one round trip, as without
//! batching); with many, each commit carries the events that arrived during the previous one.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ordonis_core::{EventId, InsertOutcome, NewInboxEvent, StoreError};
use tokio::sync::{Semaphore, oneshot};
use uuid::Uuid;

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::{params, sql_with};
use crate::tables::{backend, to_json};

/// At most this many events per statement (16 parameters each: far below both databases'
/// parameter limits).
const MAX_BATCH: usize = 256;

const INSERT: &str = "INSERT INTO {p}webhook_events
   (id, workspace_id, integration_id, dedupe_key, delivery_id, object_key, headers, body,
    body_sha256, auth, state, last_error, received_at, next_attempt_at, attempts";

const HOLDERS: &str = "SELECT id, integration_id, dedupe_key FROM {p}webhook_events
  WHERE (integration_id, dedupe_key) IN (VALUES ";

/// The body as JSON, when it is JSON that PostgreSQL's `jsonb` accepts (no NUL character).
pub(crate) fn body_json(body: &[u8]) -> Option<Box<serde_json::value::RawValue>> {
    if body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| to_json(&v).ok())
}

/// Writes `events`, [`MAX_BATCH`] to a statement (each statement commits on its own; a
/// repeated call is deduplicated, so a failure part-way is safe to retry), and reports each
/// one's outcome.
pub(crate) async fn insert_many<D: Dialect>(
    d: &D,
    events: &[NewInboxEvent],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let mut out = Vec::with_capacity(events.len());
    for chunk in events.chunks(MAX_BATCH) {
        out.extend(insert_statement(d, chunk).await?);
    }
    Ok(out)
}

/// One multi-row insert, then one look-up of the rows that already held the keys.
async fn insert_statement<D: Dialect>(
    d: &D,
    events: &[NewInboxEvent],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let now = time::OffsetDateTime::now_utc();
    let with_json = d.keeps_body_json();
    let mut rest = String::from(if with_json {
        ", body_json) VALUES "
    } else {
        ") VALUES "
    });
    let mut args = Vec::with_capacity(events.len() * 15);
    let mut next = 1;
    for (i, ev) in events.iter().enumerate() {
        let (list, after) = params(next, if with_json { 16 } else { 15 });
        next = after;
        if i > 0 {
            rest.push_str(", ");
        }
        rest.push_str(&list);
        args.extend([
            Arg::Uuid(ev.id.0),
            Arg::text(ev.workspace_id.as_str()),
            Arg::Uuid(ev.integration_id.0),
            Arg::text(&ev.dedupe_key),
            Arg::Text(ev.delivery_id.clone()),
            Arg::Text(ev.object_key.clone()),
            Arg::Json(Some(to_json(&ev.headers)?)),
            Arg::Bytes(ev.body.to_vec()),
            Arg::text(&ev.body_sha256),
            Arg::text(&ev.auth),
            Arg::text(ev.state.as_str()),
            Arg::Text(ev.note.clone()),
            Arg::time(now),
            Arg::time(now),
        ]);
        args.push(Arg::Int(0));
        if with_json {
            args.push(Arg::Json(body_json(&ev.body)));
        }
    }
    rest.push_str(" ON CONFLICT (integration_id, dedupe_key) DO NOTHING RETURNING id");
    let inserted: HashSet<Uuid> = d
        .write(sql_with::<D>(INSERT, &rest), args)
        .await?
        .iter()
        .map(|r| r.uuid("id"))
        .collect::<Result<_, _>>()?;

    // Keys not inserted belong to rows written before (or earlier in this statement).
    let missing: Vec<&NewInboxEvent> = events
        .iter()
        .filter(|e| !inserted.contains(&e.id.0))
        .collect();
    let mut holders: HashMap<(Uuid, String), Uuid> = HashMap::new();
    if !missing.is_empty() {
        let mut rest = String::new();
        let mut args = Vec::with_capacity(missing.len() * 2);
        for (i, e) in missing.iter().enumerate() {
            let (list, _) = params(2 * i + 1, 2);
            if i > 0 {
                rest.push_str(", ");
            }
            rest.push_str(&list);
            args.push(Arg::Uuid(e.integration_id.0));
            args.push(Arg::text(&e.dedupe_key));
        }
        rest.push(')');
        // A new statement: it sees rows that committed after the insert's snapshot.
        for r in d.read(sql_with::<D>(HOLDERS, &rest), args).await? {
            holders.insert(
                (r.uuid("integration_id")?, r.text("dedupe_key")?),
                r.uuid("id")?,
            );
        }
    }
    events
        .iter()
        .map(|e| {
            if inserted.contains(&e.id.0) {
                Ok(InsertOutcome::Inserted(e.id))
            } else {
                holders
                    .get(&(e.integration_id.0, e.dedupe_key.clone()))
                    .map(|id| InsertOutcome::Duplicate(EventId(*id)))
                    .ok_or_else(|| {
                        StoreError::Conflict(format!(
                            "dedupe key {} is being written concurrently",
                            e.dedupe_key
                        ))
                    })
            }
        })
        .collect()
}

type Reply = oneshot::Sender<Result<InsertOutcome, StoreError>>;

/// The group-commit queue and flush slot of one store.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Mutex<Vec<(NewInboxEvent, Reply)>>,
    // One slot gives the largest batches; two measured no faster on two cores (the
    // statement is CPU-bound in the database, not waiting on the WAL flush).
    slot: Semaphore,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            slot: Semaphore::new(1),
        }
    }
}

impl GroupCommit {
    /// Inserts one event, possibly in one statement with other callers' events.
    pub(crate) async fn insert<D: Dialect>(
        &self,
        d: &D,
        ev: NewInboxEvent,
    ) -> Result<InsertOutcome, StoreError> {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .map_err(|_| backend("ingest queue", "poisoned"))?
            .push((ev, tx));
        let slot = self
            .slot
            .acquire()
            .await
            .map_err(|_| backend("ingest batcher", "closed"))?;
        if let Ok(outcome) = rx.try_recv() {
            return outcome; // an earlier flush wrote it
        }
        let batch: Vec<(NewInboxEvent, Reply)> = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| backend("ingest queue", "poisoned"))?;
            let n = q.len().min(MAX_BATCH);
            q.drain(..n).collect()
        };
        if !batch.is_empty() {
            let (events, replies): (Vec<NewInboxEvent>, Vec<Reply>) = batch.into_iter().unzip();
            match insert_many(d, &events).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
        drop(slot); // ours may be in a batch a later holder of the slot writes
        rx.await
            .unwrap_or_else(|_| Err(backend("ingest batch", "dropped")))
    }
}
