//! The two queue tables and the row decoders, written once for every dialect.

use bytes::Bytes;
use ordonis_core::{
    EventId, FailureKind, InboxEvent, IntegrationId, IntegrationRecord, IntegrationState, JobState,
    Lease, LedgerDraft, LedgerEntry, OutboxId, OutboxJob, ProviderKind, Queue, SealedSecrets,
    StoreError, Task, TaskId, WorkspaceId,
};
use time::OffsetDateTime;

use crate::dialect::{QueueTable, SqlRow};

/// The inbox: `webhook_events`.
pub const INBOX: QueueTable = QueueTable {
    queue: Queue::Inbox,
    table: "webhook_events",
    order_by: "received_at",
    serial: &["integration_id", "object_key"],
    columns: "id, workspace_id, integration_id, dedupe_key, delivery_id, object_key, headers, \
              body, body_sha256, auth, received_at, state, attempts, next_attempt_at, \
              lease_owner, lease_expires_at, last_error, error_kind",
};

/// The outbox: `outbox`.
pub const OUTBOX: QueueTable = QueueTable {
    queue: Queue::Outbox,
    table: "outbox",
    order_by: "created_at",
    serial: &["task_id"],
    columns: "id, workspace_id, task_id, integration_id, state, attempts, next_attempt_at, \
              lease_owner, lease_expires_at, last_error, error_kind, created_at",
};

/// The table of a queue.
pub(crate) fn table(queue: Queue) -> &'static QueueTable {
    match queue {
        Queue::Inbox => &INBOX,
        Queue::Outbox => &OUTBOX,
    }
}

pub(crate) fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("{what}: {e}"))
}

pub(crate) fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| ordonis_core::InvalidInput::new("number", "exceeds i64").into())
}

pub(crate) fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn workspace(row: &impl SqlRow) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::new(row.text("workspace_id")?).map_err(|e| backend("workspace id", e))
}

fn state(row: &impl SqlRow) -> Result<JobState, StoreError> {
    let s = row.text("state")?;
    JobState::parse(&s).ok_or_else(|| backend("unknown job state", s))
}

fn attempts(row: &impl SqlRow) -> Result<u32, StoreError> {
    Ok(u32::try_from(row.int("attempts")?).unwrap_or(0))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &impl SqlRow,
    col: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(row.json(col)?.get()).map_err(|e| backend(col, e))
}

fn lease(
    row: &impl SqlRow,
    queue: Queue,
    id: uuid::Uuid,
    state: JobState,
    attempt: u32,
) -> Result<Option<Lease>, StoreError> {
    if state != JobState::Processing {
        return Ok(None);
    }
    Ok(
        match (
            row.opt_text("lease_owner")?,
            row.opt_time("lease_expires_at")?,
        ) {
            (Some(owner), Some(expires_at)) => Some(Lease {
                queue,
                row: id,
                owner,
                attempt,
                expires_at,
            }),
            _ => None,
        },
    )
}

/// An inbox row.
pub(crate) fn event(row: &impl SqlRow) -> Result<InboxEvent, StoreError> {
    let id = row.uuid("id")?;
    let state = state(row)?;
    let attempts = attempts(row)?;
    Ok(InboxEvent {
        id: EventId(id),
        workspace_id: workspace(row)?,
        integration_id: IntegrationId(row.uuid("integration_id")?),
        dedupe_key: row.text("dedupe_key")?,
        delivery_id: row.opt_text("delivery_id")?,
        object_key: row.opt_text("object_key")?,
        headers: json(row, "headers")?,
        body: Bytes::from(row.bytes("body")?),
        body_sha256: row.text("body_sha256")?,
        auth: row.text("auth")?,
        received_at: row.time("received_at")?,
        state,
        attempts,
        next_attempt_at: row.time("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        error_kind: row
            .opt_text("error_kind")?
            .as_deref()
            .map(FailureKind::parse),
        lease: lease(row, Queue::Inbox, id, state, attempts)?,
    })
}

/// An outbox row.
pub(crate) fn push(row: &impl SqlRow) -> Result<OutboxJob, StoreError> {
    let id = row.uuid("id")?;
    let state = state(row)?;
    let attempts = attempts(row)?;
    Ok(OutboxJob {
        id: OutboxId(id),
        workspace_id: workspace(row)?,
        task_id: TaskId(row.uuid("task_id")?),
        integration_id: IntegrationId(row.uuid("integration_id")?),
        state,
        attempts,
        next_attempt_at: row.time("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        error_kind: row
            .opt_text("error_kind")?
            .as_deref()
            .map(FailureKind::parse),
        lease: lease(row, Queue::Outbox, id, state, attempts)?,
        created_at: row.time("created_at")?,
    })
}

/// A row of either queue, with the time it is ordered by.
pub(crate) fn job(
    queue: Queue,
    row: &impl SqlRow,
) -> Result<(OffsetDateTime, ordonis_core::Job), StoreError> {
    let t = table(queue);
    let at = row.time(t.order_by)?;
    Ok(match queue {
        Queue::Inbox => (at, ordonis_core::Job::Event(event(row)?)),
        Queue::Outbox => (at, ordonis_core::Job::Push(push(row)?)),
    })
}

/// An integration row.
pub(crate) fn integration(row: &impl SqlRow) -> Result<IntegrationRecord, StoreError> {
    Ok(IntegrationRecord {
        id: IntegrationId(row.uuid("id")?),
        workspace_id: workspace(row)?,
        provider: ProviderKind::new(row.text("provider")?),
        config: json(row, "config")?,
        secrets: SealedSecrets(row.bytes("secrets")?),
        paused_until: row.opt_time("paused_until")?,
        state: {
            let s = row.text("state")?;
            IntegrationState::parse(&s).ok_or_else(|| backend("unknown integration state", s))?
        },
        created_at: row.time("created_at")?,
    })
}

/// A task row (its `doc`).
pub(crate) fn task(row: &impl SqlRow) -> Result<Task, StoreError> {
    json(row, "doc")
}

/// A ledger row (`idx, logged_at, record, bytes, leaf_hash`).
pub(crate) fn entry(row: &impl SqlRow) -> Result<LedgerEntry, StoreError> {
    let record: LedgerDraft =
        serde_json::from_str(&row.text("record")?).map_err(|e| backend("ledger record", e))?;
    let leaf_hash: [u8; 32] = row
        .bytes("leaf_hash")?
        .as_slice()
        .try_into()
        .map_err(|_| backend("ledger leaf hash", "not 32 bytes"))?;
    Ok(LedgerEntry {
        idx: u64::try_from(row.int("idx")?).map_err(|e| backend("ledger index", e))?,
        logged_at: row.time("logged_at")?,
        record,
        bytes: row.bytes("bytes")?,
        leaf_hash,
    })
}

/// A value as JSON text for a JSON column.
pub(crate) fn to_json(
    v: &impl serde::Serialize,
) -> Result<Box<serde_json::value::RawValue>, StoreError> {
    serde_json::value::to_raw_value(v).map_err(|e| backend("json", e))
}
