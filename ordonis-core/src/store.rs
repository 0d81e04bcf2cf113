//! The `Store` contract: integrations, the webhook inbox, tasks and mappings, the outbox, and
//! the atomic unit of work that ties a task change to its ledger entries and its queue row.
//!
//! Stores persist; the engine decides. Every method is a short transaction: no store call is
//! held open across a provider's HTTP call.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::ids::{EventId, IntegrationId, OutboxId, TaskId, WorkspaceId};
use crate::ledger::{Ledger, LedgerDraft, LedgerEntry};
use crate::provider::ProviderKind;
use crate::secrets::SealedSecrets;
use crate::task::{ExternalRef, Task};

/// An integration as stored: non-secret configuration plus sealed secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrationRecord {
    /// Id.
    pub id: IntegrationId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Provider.
    pub provider: ProviderKind,
    /// Non-secret configuration (see [`crate::IntegrationConfig`]), as JSON.
    pub config: serde_json::Value,
    /// Secrets, sealed; the store never sees plaintext.
    pub secrets: SealedSecrets,
    /// While set and in the future, workers leave this integration's rows alone (rate limit).
    pub paused_until: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// Processing state of an inbox or outbox row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting (possibly until `next_attempt_at`).
    Pending,
    /// Claimed by a worker under a lease.
    Processing,
    /// Finished.
    Done,
    /// Failed for good (bad input); kept with its error, replayable.
    Failed,
    /// Gave up after the last attempt; kept with its error, replayable.
    Dead,
}

impl JobState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Processing => "processing",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => JobState::Pending,
            "processing" => JobState::Processing,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A webhook delivery to append to the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInboxEvent {
    /// Id to give the row.
    pub id: EventId,
    /// Workspace (of the integration).
    pub workspace_id: WorkspaceId,
    /// Integration it arrived for.
    pub integration_id: IntegrationId,
    /// Deduplication key: the provider's delivery id, else the body's SHA-256 (hex); suffixed
    /// with `#<object>` when one delivery touches several objects.
    pub dedupe_key: String,
    /// The provider's delivery id, when it sent one.
    pub delivery_id: Option<String>,
    /// The object the event is about (external id); `None` for heartbeats and unparseable bodies.
    pub object_key: Option<String>,
    /// Headers worth keeping (delivery id, retry count, signature method), lowercased names.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Bytes,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// Which authentication check passed.
    pub auth: String,
    /// Initial state: `Pending` normally; `Done` for a heartbeat; `Failed` for a body that
    /// verified but could not be parsed.
    pub state: JobState,
    /// Error or note to record with the initial state.
    pub note: Option<String>,
}

/// Result of appending an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored as a new row.
    Inserted(EventId),
    /// A row with the same dedupe key exists already; nothing was stored.
    Duplicate(EventId),
}

impl InsertOutcome {
    /// The id of the row holding the event.
    pub fn id(self) -> EventId {
        match self {
            InsertOutcome::Inserted(id) | InsertOutcome::Duplicate(id) => id,
        }
    }
}

/// An inbox row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEvent {
    /// Id.
    pub id: EventId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Integration.
    pub integration_id: IntegrationId,
    /// Deduplication key.
    pub dedupe_key: String,
    /// Provider delivery id.
    pub delivery_id: Option<String>,
    /// Object key (external id).
    pub object_key: Option<String>,
    /// Kept headers.
    pub headers: Vec<(String, String)>,
    /// Exact body.
    pub body: Bytes,
    /// SHA-256 of the body, hex.
    pub body_sha256: String,
    /// Which authentication check passed.
    pub auth: String,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// State.
    pub state: JobState,
    /// Attempts so far (claims).
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: OffsetDateTime,
    /// Last error, or a note on how it finished.
    pub last_error: Option<String>,
    /// The lease, while `Processing`.
    pub lease: Option<Lease>,
}

/// A push of a task's pending changes, queued by the task API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxJob {
    /// Id.
    pub id: OutboxId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The task to push.
    pub task_id: TaskId,
    /// The integration to push through.
    pub integration_id: IntegrationId,
    /// State.
    pub state: JobState,
    /// Attempts so far.
    pub attempts: u32,
    /// Earliest time of the next attempt.
    pub next_attempt_at: OffsetDateTime,
    /// Last error.
    pub last_error: Option<String>,
    /// The lease, while `Processing`.
    pub lease: Option<Lease>,
}

/// Proof that a worker holds a claimed row. Completion and failure are fenced on it: once a
/// lease expired and the row was claimed again, the old lease no longer completes anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The row (inbox event or outbox job id).
    pub row: Uuid,
    /// The claiming worker.
    pub owner: String,
    /// The row's attempt number at claim time; a later claim increments it.
    pub attempt: u32,
    /// When the lease expires.
    pub expires_at: OffsetDateTime,
}

/// A claim: up to `limit` due rows, oldest first, leased to `worker` for `lease`.
/// Rows of paused integrations, and rows whose object already has a row in flight, are skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Worker id (the lease owner).
    pub worker: String,
    /// Maximum rows.
    pub limit: usize,
    /// Lease length.
    pub lease: Duration,
}

/// What to do with a row whose processing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time; the attempt counts.
    At(OffsetDateTime),
    /// Try again at this time without counting the attempt (rate limit, shutdown).
    Deferred(OffsetDateTime),
    /// Give up: `Dead` (retries exhausted) or `Failed` (bad input).
    Never(JobState),
}

/// Filter for listing inbox rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this integration.
    pub integration_id: Option<IntegrationId>,
    /// Only this state.
    pub state: Option<JobState>,
    /// At most this many (newest first); 0 means a default of 100.
    pub limit: usize,
}

/// Writes to the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskWrite {
    /// The new state of the task (its `revision` is the new revision).
    pub task: Task,
    /// The revision the change was computed from; `None` inserts a new task.
    pub expected_revision: Option<u64>,
}

/// How the unit of work finishes the row that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Nothing to complete (a task API call).
    None,
    /// Mark an inbox event done (fenced by its lease), with an optional note.
    Inbox {
        /// The lease.
        lease: Lease,
        /// How it finished ("ignored: comment_created", "stale").
        note: Option<String>,
    },
    /// Mark an outbox job done (fenced by its lease).
    Outbox {
        /// The lease.
        lease: Lease,
    },
}

/// Everything one sync step writes, committed atomically: all of it or none of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitOfWork {
    /// Workspace all of it belongs to.
    pub workspace_id: WorkspaceId,
    /// Task change, if any.
    pub task: Option<TaskWrite>,
    /// Mapping to insert (`external ref → task`); a mapping of the same ref to another task is
    /// a `Conflict`.
    pub mapping: Option<(ExternalRef, TaskId)>,
    /// Ledger entries to append to the workspace's log, in order.
    pub ledger: Vec<LedgerDraft>,
    /// Queue (or coalesce into the pending) push for this task through this integration.
    pub enqueue_push: Option<(TaskId, IntegrationId)>,
    /// The row to complete.
    pub completion: Completion,
}

impl UnitOfWork {
    /// An empty unit of work in a workspace.
    pub fn new(workspace_id: WorkspaceId) -> Self {
        Self {
            workspace_id,
            task: None,
            mapping: None,
            ledger: Vec::new(),
            enqueue_push: None,
            completion: Completion::None,
        }
    }
}

/// What a committed unit of work produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The sealed ledger entries, with their indexes.
    pub entries: Vec<LedgerEntry>,
    /// The outbox row the push went into (new or coalesced).
    pub outbox: Option<OutboxId>,
}

/// Integrations and their sealed secrets.
#[async_trait]
pub trait Integrations: Send + Sync {
    /// Stores a new integration.
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError>;
    /// One integration.
    async fn integration(&self, id: IntegrationId)
    -> Result<Option<IntegrationRecord>, StoreError>;
    /// A workspace's integrations.
    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError>;
    /// Replaces the configuration and sealed secrets (rotation, handshake).
    async fn update_integration(
        &self,
        id: IntegrationId,
        config: &serde_json::Value,
        secrets: &SealedSecrets,
    ) -> Result<(), StoreError>;
    /// Pauses (or, with `None`, resumes) every worker's use of an integration.
    async fn set_paused_until(
        &self,
        id: IntegrationId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;
}

/// The append-only webhook inbox, which is also the inbound job queue.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Appends deliveries, deduplicated on `(integration, dedupe_key)`.
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError>;
    /// Claims due pending rows (and rows whose lease expired), at most one per object.
    async fn claim_events(&self, req: &ClaimRequest) -> Result<Vec<InboxEvent>, StoreError>;
    /// Records a failed attempt (fenced by the lease).
    async fn fail_event(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError>;
    /// One event of a workspace.
    async fn event(&self, ws: &WorkspaceId, id: EventId) -> Result<Option<InboxEvent>, StoreError>;
    /// A workspace's events, newest first.
    async fn events(
        &self,
        ws: &WorkspaceId,
        filter: &EventFilter,
    ) -> Result<Vec<InboxEvent>, StoreError>;
    /// Puts a failed or dead event back to pending with its attempts reset.
    async fn replay_event(&self, ws: &WorkspaceId, id: EventId) -> Result<(), StoreError>;
    /// Row counts by state (for metrics).
    async fn event_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError>;
}

/// The outbox: pending pushes, one per task at a time.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Claims due pending pushes, at most one per task.
    async fn claim_pushes(&self, req: &ClaimRequest) -> Result<Vec<OutboxJob>, StoreError>;
    /// Records a failed attempt (fenced by the lease).
    async fn fail_push(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError>;
    /// A workspace's outbox rows, newest first.
    async fn pushes(&self, ws: &WorkspaceId) -> Result<Vec<OutboxJob>, StoreError>;
    /// Puts a dead push back to pending.
    async fn replay_push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<(), StoreError>;
    /// Row counts by state (for metrics).
    async fn push_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError>;
}

/// Tasks and external-id mappings.
#[async_trait]
pub trait Tasks: Send + Sync {
    /// One task of a workspace.
    async fn task(&self, ws: &WorkspaceId, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// A workspace's tasks.
    async fn tasks(&self, ws: &WorkspaceId) -> Result<Vec<Task>, StoreError>;
    /// The task mapped to an external object of an integration.
    async fn find_mapping(
        &self,
        integration: IntegrationId,
        external_id: &str,
        object_type: &str,
    ) -> Result<Option<TaskId>, StoreError>;
}

/// A complete store: every part above, the ledger, and the atomic unit of work.
#[async_trait]
pub trait Store: Integrations + Inbox + Outbox + Tasks + Ledger + fmt::Debug {
    /// Commits a unit of work atomically. Fails with `Conflict` when the task's revision moved
    /// or the mapping points elsewhere, and `LeaseLost` when the completion's lease is stale;
    /// in both cases nothing is written.
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError>;
}
