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

use crate::console_session::ConsoleSession;
use crate::error::StoreError;
use crate::ids::{CommentId, EventId, IntegrationId, OutboxId, SessionId, TaskId, WorkspaceId};
use crate::ledger::{Ledger, LedgerDraft, LedgerEntry};
use crate::model::{Assignee, Status};
use crate::people::{AccountRef, Person, SeenAccount};
use crate::provider::ObjectKey;
use crate::provider::ProviderKind;
use crate::secrets::SealedSecrets;
use crate::session::{AgentSession, SessionWrite};
use crate::task::{ExternalRef, Task};
use crate::task_comment::{CommentWrite, TaskComment};
use crate::task_query::{TaskList, TaskQuery};

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
    /// Whether it syncs: paused and disabled integrations' rows are not claimed, and a
    /// disabled one's webhook is unknown (404).
    pub state: IntegrationState,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// The life-cycle state of an integration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationState {
    /// Syncing.
    #[default]
    Active,
    /// Paused by an operator: its webhooks are still stored, its jobs wait.
    Paused,
    /// Disabled (deleted through the API): its webhook is unknown, its jobs never run, its
    /// tasks and ledger stay.
    Disabled,
}

impl IntegrationState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrationState::Active => "active",
            IntegrationState::Paused => "paused",
            IntegrationState::Disabled => "disabled",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => IntegrationState::Active,
            "paused" => IntegrationState::Paused,
            "disabled" => IntegrationState::Disabled,
            _ => return None,
        })
    }
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
    /// Deduplication key: for a webhook delivery the body's SHA-256 (hex), what the signature
    /// covers (never the unsigned delivery id); suffixed with `#<object>` when one delivery
    /// touches several objects.
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
    /// The kind of the last failed attempt ([`Store::fail`]); `None` before any, and once
    /// done.
    pub error_kind: Option<FailureKind>,
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
    /// The kind of the last failed attempt; `None` before any, and once done.
    pub error_kind: Option<FailureKind>,
    /// The lease, while `Processing`.
    pub lease: Option<Lease>,
    /// When it was queued (the outbox lists by it, newest first).
    pub created_at: OffsetDateTime,
}

/// The two job queues. They share one life cycle (claim under a lease, fail with a retry
/// decision, replay, list, count), so a store implements it once, parameterized by the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// The webhook inbox: one row per stored delivery (or per object of a delivery).
    Inbox,
    /// The outbox: pending pushes of a task's changes, one per task and integration at a time.
    Outbox,
}

impl Queue {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Inbox => "inbox",
            Queue::Outbox => "outbox",
        }
    }
}

/// The id of a job row, naming its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobId {
    /// An inbox event.
    Event(EventId),
    /// An outbox push.
    Push(OutboxId),
}

impl JobId {
    /// The queue the row is in.
    pub fn queue(self) -> Queue {
        match self {
            JobId::Event(_) => Queue::Inbox,
            JobId::Push(_) => Queue::Outbox,
        }
    }

    /// The row's UUID.
    pub fn uuid(self) -> Uuid {
        match self {
            JobId::Event(id) => id.0,
            JobId::Push(id) => id.0,
        }
    }

    /// The id of a row of `queue`.
    pub fn of(queue: Queue, row: Uuid) -> Self {
        match queue {
            Queue::Inbox => JobId::Event(EventId(row)),
            Queue::Outbox => JobId::Push(OutboxId(row)),
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobId::Event(id) => write!(f, "event {id}"),
            JobId::Push(id) => write!(f, "push {id}"),
        }
    }
}

/// A row of either queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// An inbox event.
    Event(InboxEvent),
    /// An outbox push.
    Push(OutboxJob),
}

impl Job {
    /// The row's id.
    pub fn id(&self) -> JobId {
        match self {
            Job::Event(e) => JobId::Event(e.id),
            Job::Push(p) => JobId::Push(p.id),
        }
    }

    /// The row's workspace.
    pub fn workspace_id(&self) -> &WorkspaceId {
        match self {
            Job::Event(e) => &e.workspace_id,
            Job::Push(p) => &p.workspace_id,
        }
    }

    /// The row's integration.
    pub fn integration_id(&self) -> IntegrationId {
        match self {
            Job::Event(e) => e.integration_id,
            Job::Push(p) => p.integration_id,
        }
    }

    /// The row's state.
    pub fn state(&self) -> JobState {
        match self {
            Job::Event(e) => e.state,
            Job::Push(p) => p.state,
        }
    }

    /// Attempts so far.
    pub fn attempts(&self) -> u32 {
        match self {
            Job::Event(e) => e.attempts,
            Job::Push(p) => p.attempts,
        }
    }

    /// The lease, while `Processing`.
    pub fn lease(&self) -> Option<&Lease> {
        match self {
            Job::Event(e) => e.lease.as_ref(),
            Job::Push(p) => p.lease.as_ref(),
        }
    }

    /// The row's place in its queue's listing (see [`JobCursor`]).
    pub fn cursor(&self) -> JobCursor {
        match self {
            Job::Event(e) => JobCursor {
                at: e.received_at,
                id: e.id.0,
            },
            Job::Push(p) => JobCursor {
                at: p.created_at,
                id: p.id.0,
            },
        }
    }

    /// The inbox event, if this is one.
    pub fn into_event(self) -> Option<InboxEvent> {
        match self {
            Job::Event(e) => Some(e),
            Job::Push(_) => None,
        }
    }

    /// The outbox push, if this is one.
    pub fn into_push(self) -> Option<OutboxJob> {
        match self {
            Job::Push(p) => Some(p),
            Job::Event(_) => None,
        }
    }
}

/// Proof that a worker holds a claimed row. Completion and failure are fenced on it: once a
/// lease expired and the row was claimed again, the old lease no longer completes anything.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The queue the row is in.
    pub queue: Queue,
    /// The row (inbox event or outbox job id).
    pub row: Uuid,
    /// The claiming worker.
    pub owner: String,
    /// The row's attempt number at claim time; a later claim increments it.
    pub attempt: u32,
    /// When the lease expires.
    pub expires_at: OffsetDateTime,
}

impl Lease {
    /// The leased row's id.
    pub fn job(&self) -> JobId {
        JobId::of(self.queue, self.row)
    }
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

/// What kind of failure a row's last attempt met, stored beside its message so that views
/// (the objects an integration may not read) select rows by kind, never by message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The credentials may not read or write the object ([`crate::ProviderError::Forbidden`]).
    AccessDenied,
    /// The provider asked to wait (a rate limit, a busy object).
    RateLimited,
    /// A temporary failure of the provider or the store.
    Temporary,
    /// The object does not exist, or is outside the integration's scope.
    NotFound,
    /// The provider refused for good (credentials, a refused change, configuration).
    Refused,
    /// Input that cannot be understood or stored.
    BadInput,
    /// Anything else (a lost lease, a shutdown, a missing provider).
    Other,
}

impl FailureKind {
    /// Every kind, in declaration order.
    pub const ALL: [FailureKind; 7] = [
        FailureKind::AccessDenied,
        FailureKind::RateLimited,
        FailureKind::Temporary,
        FailureKind::NotFound,
        FailureKind::Refused,
        FailureKind::BadInput,
        FailureKind::Other,
    ];

    /// The stored name (`access_denied`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::AccessDenied => "access_denied",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Temporary => "temporary",
            FailureKind::NotFound => "not_found",
            FailureKind::Refused => "refused",
            FailureKind::BadInput => "bad_input",
            FailureKind::Other => "other",
        }
    }

    /// The kind a stored name stands for; an unknown name (written by a newer version) is
    /// `Other`.
    pub fn parse(s: &str) -> FailureKind {
        FailureKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(FailureKind::Other)
    }
}

/// A failed attempt as [`Store::fail`] records it: its kind and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What happened, for a person.
    pub message: String,
}

impl JobFailure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<&crate::error::Error> for JobFailure {
    fn from(e: &crate::error::Error) -> Self {
        Self::new(e.failure_kind(), e.to_string())
    }
}

/// Filter for listing inbox rows of one workspace (see [`StoreExt::events`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this integration.
    pub integration_id: Option<IntegrationId>,
    /// Only this state.
    pub state: Option<JobState>,
    /// At most this many (newest first); 0 means a default of 100.
    pub limit: usize,
}

/// Filter for listing the rows of a queue, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFilter {
    /// The queue.
    pub queue: Queue,
    /// Only this workspace; `None` lists every workspace's rows (an operator's view).
    pub workspace_id: Option<WorkspaceId>,
    /// Only this integration.
    pub integration_id: Option<IntegrationId>,
    /// Only this state.
    pub state: Option<JobState>,
    /// At most this many; 0 means [`JobFilter::DEFAULT_LIMIT`].
    pub limit: usize,
    /// Keyset paging: only rows listed after this one (older), so that a caller pages through
    /// a queue without missing or repeating a row while rows are appended.
    pub after: Option<JobCursor>,
}

/// A row's place in a queue's listing, which is newest first by `(at, id)`: the inbox by
/// `received_at`, the outbox by `created_at`, ties broken by id. [`Job::cursor`] gives a
/// row's; [`JobFilter::after`] resumes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobCursor {
    /// The row's listing time.
    pub at: OffsetDateTime,
    /// The row's id.
    pub id: Uuid,
}

impl JobFilter {
    /// The limit applied when `limit` is 0.
    pub const DEFAULT_LIMIT: usize = 100;

    /// Every row of a queue (up to the default limit).
    pub fn new(queue: Queue) -> Self {
        Self {
            queue,
            workspace_id: None,
            integration_id: None,
            state: None,
            limit: 0,
            after: None,
        }
    }

    /// The effective limit.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            Self::DEFAULT_LIMIT
        } else {
            self.limit
        }
    }
}

/// One page of a workspace's tasks, in id order (keyset paging: pass the last id seen as
/// `after` to get the next page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskPage {
    /// Start after this task id; `None` starts at the beginning.
    pub after: Option<TaskId>,
    /// At most this many tasks; 0 means [`TaskPage::DEFAULT_LIMIT`].
    pub limit: usize,
}

impl TaskPage {
    /// The limit applied when `limit` is 0.
    pub const DEFAULT_LIMIT: usize = 500;

    /// The first page of `limit` tasks.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The effective limit.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            Self::DEFAULT_LIMIT
        } else {
            self.limit
        }
    }
}

/// A change to a stored integration; `None` fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationUpdate {
    /// New non-secret configuration.
    pub config: Option<serde_json::Value>,
    /// New sealed secrets (rotation).
    pub secrets: Option<SealedSecrets>,
    /// `Some(Some(t))` pauses every worker's use of the integration until `t`,
    /// `Some(None)` resumes it.
    pub paused_until: Option<Option<OffsetDateTime>>,
    /// A new life-cycle state.
    pub state: Option<IntegrationState>,
}

impl IntegrationUpdate {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.config.is_none()
            && self.secrets.is_none()
            && self.paused_until.is_none()
            && self.state.is_none()
    }
}

/// Writes to the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskWrite {
    /// The new state of the task (its `revision` is the new revision).
    pub task: Task,
    /// The revision the change was computed from; `None` inserts a new task.
    pub expected_revision: Option<u64>,
}

impl TaskWrite {
    /// The task as changed, written at the next revision over the one it was read at.
    pub fn next(mut task: Task) -> Self {
        let expected = task.revision;
        task.revision += 1;
        Self {
            task,
            expected_revision: Some(expected),
        }
    }
}

/// How the unit of work finishes the row that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Nothing to complete (a task API call).
    None,
    /// Mark the leased row (of either queue) done, fenced by its lease and the unit's
    /// workspace, with an optional note.
    Done {
        /// The lease.
        lease: Lease,
        /// How it finished ("ignored: comment_created", "stale").
        note: Option<String>,
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
    /// Mapping to remove (unlink): the ref's mapping is deleted when it points to this task.
    pub unmapping: Option<(ExternalRef, TaskId)>,
    /// Comments to insert or update (each fenced by its own revision, like the task).
    pub comments: Vec<CommentWrite>,
    /// Agent sessions to insert or update (each fenced by its own revision).
    pub sessions: Vec<SessionWrite>,
    /// Ledger entries to append to the workspace's log, in order.
    pub ledger: Vec<LedgerDraft>,
    /// Queue (or coalesce into the pending) push for this task through this integration.
    pub enqueue_push: Option<(TaskId, IntegrationId)>,
    /// Change an integration of the workspace (its settings, with the ledger entry that
    /// records the change); `NotFound` when the workspace has no such integration.
    pub integration: Option<(IntegrationId, IntegrationUpdate)>,
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
            unmapping: None,
            comments: Vec::new(),
            sessions: Vec::new(),
            ledger: Vec::new(),
            enqueue_push: None,
            integration: None,
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

/// A store: integrations, the two job queues, tasks and mappings, the ledger, and the atomic
/// unit of work. These are the methods a store author writes; [`StoreExt`] adds the typed
/// and convenience calls on top of them for every store.
///
/// Every method is a short transaction: no store call is held open across a provider's HTTP
/// call. The conformance suite (`ordonis_testkit::store_suite!`) pins the semantics.
#[async_trait]
pub trait Store: Ledger + fmt::Debug + Send + Sync {
    /// Stores a new integration (`Conflict` if the id exists).
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError>;
    /// One integration, whatever its workspace (its record names it).
    async fn integration(&self, id: IntegrationId)
    -> Result<Option<IntegrationRecord>, StoreError>;
    /// A workspace's integrations, oldest first.
    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError>;
    /// Applies an [`IntegrationUpdate`] (`NotFound` if there is no such integration).
    async fn update_integration(
        &self,
        id: IntegrationId,
        update: &IntegrationUpdate,
    ) -> Result<(), StoreError>;
    /// Every workspace with an integration or a task, sorted.
    async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError>;

    /// Appends deliveries to the inbox, deduplicated on `(integration, dedupe_key)`; one
    /// outcome per event, in order. A new event cannot start `Processing`.
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Claims due rows of a queue (pending and due, or processing with an expired lease),
    /// oldest first, at most one per object (inbox) or task (outbox) in flight, skipping
    /// paused integrations; each claim increments the row's attempts.
    async fn claim(&self, queue: Queue, req: &ClaimRequest) -> Result<Vec<Job>, StoreError>;
    /// Records a failed attempt of the leased row, its message and kind
    /// (`LeaseLost` when the lease is stale).
    async fn fail(&self, lease: &Lease, error: &JobFailure, retry: Retry)
    -> Result<(), StoreError>;
    /// Puts a failed or dead row of the workspace back to pending with its attempts reset
    /// (`NotFound` if the workspace has no such row, `Invalid` if it is in another state).
    async fn replay(&self, ws: &WorkspaceId, id: JobId) -> Result<(), StoreError>;
    /// One row, whatever its workspace (the row names it).
    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;
    /// Rows of a queue, newest first.
    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError>;
    /// A queue's row counts by state, sorted by state name (for metrics).
    async fn job_counts(&self, queue: Queue) -> Result<Vec<(JobState, u64)>, StoreError>;

    /// One task, whatever its workspace (the task names it).
    async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError>;
    /// A page of a workspace's tasks, in id order.
    async fn tasks(&self, ws: &WorkspaceId, page: &TaskPage) -> Result<Vec<Task>, StoreError>;
    /// A page of a workspace's tasks under a [`TaskQuery`]'s filters and order, with each
    /// task's stored sync state, and the cursor of the next page (keyset paging: stable
    /// order; a task that exists throughout a walk is listed once, whatever changes between
    /// pages, unless its sort key moves). `Invalid` for a limit above the maximum or a cursor
    /// made under other filters.
    async fn query_tasks(&self, query: &TaskQuery) -> Result<TaskList, StoreError>;
    /// The distinct statuses of a workspace's tasks (at most
    /// [`MAX_STATUS_CHOICES`](crate::task_query::MAX_STATUS_CHOICES)), by category then name.
    async fn task_statuses(&self, ws: &WorkspaceId) -> Result<Vec<Status>, StoreError>;
    /// The distinct assignees of a workspace's tasks (at most
    /// [`MAX_ASSIGNEE_CHOICES`](crate::task_query::MAX_ASSIGNEE_CHOICES)), by account id.
    async fn task_assignees(&self, ws: &WorkspaceId) -> Result<Vec<Assignee>, StoreError>;
    /// A task's comments, oldest first (by creation time, then id), tombstones included.
    async fn task_comments(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<TaskComment>, StoreError>;
    /// One comment, whatever its workspace (the comment names it).
    async fn comment(&self, id: CommentId) -> Result<Option<TaskComment>, StoreError>;

    /// A task's agent sessions, oldest first.
    async fn task_sessions(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<AgentSession>, StoreError>;
    /// One session, whatever its workspace (the session names it).
    async fn session(&self, id: SessionId) -> Result<Option<AgentSession>, StoreError>;
    /// Sessions of every workspace that are `active` or `awaiting_input` with no activity
    /// since `before`, oldest activity first, at most `limit` (the stale sweep).
    async fn idle_sessions(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AgentSession>, StoreError>;

    /// The task mapped to an external object of an integration.
    async fn find_mapping(
        &self,
        integration: IntegrationId,
        key: &ObjectKey,
    ) -> Result<Option<TaskId>, StoreError>;

    /// The tasks of the workspace mapped to external objects of an integration: one answer
    /// per key, in order (`None` when the key is unmapped, or mapped to a task of another
    /// workspace). The default asks [`find_mapping`](Store::find_mapping) and
    /// [`task`](Store::task) per key; the SQL stores answer in one query (a worker reads a
    /// whole batch's tasks this way).
    async fn mapped_tasks(
        &self,
        ws: &WorkspaceId,
        integration: IntegrationId,
        keys: &[ObjectKey],
    ) -> Result<Vec<Option<Task>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match self.find_mapping(integration, key).await? {
                Some(id) => self.task(id).await?.filter(|t| &t.workspace_id == ws),
                None => None,
            });
        }
        Ok(out)
    }

    /// Commits a unit of work atomically. Fails with `Conflict` when the task's revision moved
    /// or the mapping points elsewhere, and `LeaseLost` when the completion's lease is stale
    /// or its row belongs to another workspace; in every case nothing is written.
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError>;

    /// Commits many units of work of one workspace together, with one outcome per unit, in
    /// order. What a batch guarantees:
    /// - each unit is all or nothing, exactly as [`commit`](Store::commit) would do it: a unit
    ///   that fails (`Conflict`, `LeaseLost`, `Invalid`, `NotFound`) writes nothing and leaves
    ///   the others alone;
    /// - the units that succeed are committed together, their ledger entries appended in unit
    ///   order with gapless indexes, as if committed one after another with nothing between;
    /// - the outer `Err` means the batch as a whole could not be committed (the database went
    ///   away, the transaction failed at commit, the units name more than one workspace):
    ///   then nothing of it is written.
    ///
    /// The default commits unit by unit; the SQL stores do the batch in one transaction (one
    /// savepoint per unit, one ledger-head update, one log flush).
    async fn commit_batch(
        &self,
        units: Vec<UnitOfWork>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        rules::validate_batch(&units)?;
        let mut out = Vec::with_capacity(units.len());
        for uow in units {
            out.push(match self.commit(uow).await {
                Err(e) if rules::batch_wide(&e) => return Err(e),
                r => r,
            });
        }
        Ok(out)
    }

    /// Creates an integration's sync job, or re-arms it (see [`SyncSchedule`]): a pending
    /// or failed job becomes pending, due at the earlier of its time and `at` (a failed one
    /// at `at`), attempts reset; a leased job is left as it is (its run is underway).
    /// `NotFound` when the integration does not exist.
    async fn schedule_sync(&self, schedule: &SyncSchedule) -> Result<(), StoreError>;
    /// Leases up to `req.limit` due sync jobs (pending and due, or processing with an
    /// expired lease), skipping paused and inactive integrations; each claim increments the
    /// job's attempts.
    async fn claim_sync(&self, req: &ClaimRequest) -> Result<Vec<SyncJob>, StoreError>;
    /// Records a run's page under its lease and returns the extended lease; `LeaseLost`
    /// when the lease is stale (the job was claimed again).
    async fn save_sync(&self, lease: &SyncLease, save: &SyncSave) -> Result<SyncLease, StoreError>;
    /// An integration's sync job.
    async fn sync_job(&self, integration: IntegrationId) -> Result<Option<SyncJob>, StoreError>;
    /// Adds `fields` repaired by an event of run `run` to the job's counts (`repaired` only
    /// while `run` is still the job's current run). Unknown integrations are ignored.
    async fn add_sync_repaired(
        &self,
        integration: IntegrationId,
        run: u64,
        fields: u64,
    ) -> Result<(), StoreError>;

    /// The workspace's directory of principals, sorted by principal.
    async fn people(&self, ws: &WorkspaceId) -> Result<Vec<Person>, StoreError>;
    /// One principal of the workspace's directory.
    async fn person(&self, ws: &WorkspaceId, principal: &str)
    -> Result<Option<Person>, StoreError>;
    /// Stores a principal (inserted, or replacing the one with its id): `Conflict` when one
    /// of its accounts is mapped by hand to another principal of the workspace (the message
    /// names that principal). The engine has checked it ([`Person::normalize`]).
    async fn put_person(&self, person: &Person) -> Result<(), StoreError>;
    /// The principal that lists this account by hand, if any.
    async fn person_with_account(
        &self,
        ws: &WorkspaceId,
        account: &AccountRef,
    ) -> Result<Option<Person>, StoreError>;
    /// The principals listing this e-mail (lowercase), sorted by principal.
    async fn people_with_email(
        &self,
        ws: &WorkspaceId,
        email: &str,
    ) -> Result<Vec<Person>, StoreError>;
    /// Records accounts an adapter has seen: inserted, or updated with the name, e-mail and
    /// kind a sighting gives (a sighting without a name or an e-mail keeps the known one).
    async fn record_accounts(
        &self,
        ws: &WorkspaceId,
        accounts: &[SeenAccount],
    ) -> Result<(), StoreError>;
    /// The accounts seen in a workspace, sorted by integration, then account id.
    async fn seen_accounts(&self, ws: &WorkspaceId) -> Result<Vec<SeenAccount>, StoreError>;
    /// One account seen in a workspace.
    async fn seen_account(
        &self,
        ws: &WorkspaceId,
        account: &AccountRef,
    ) -> Result<Option<SeenAccount>, StoreError>;

    /// The key-check record: a fixed text sealed with the host's secret key when the store
    /// was first used (`Keyring::seal_key_check`), so that a process holding another key is
    /// refused at start-up instead of failing every job. `None` before one is stored.
    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores the key-check record unless one exists (the first of concurrent callers wins)
    /// and returns the record now stored.
    async fn init_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Stores a console sign-in, dropping the expired ones (as of `now`); past `max_live`
    /// live sign-ins, the ones closest to expiring are dropped first.
    async fn put_console_session(
        &self,
        session: &ConsoleSession,
        now: OffsetDateTime,
        max_live: u64,
    ) -> Result<(), StoreError>;

    /// The console sign-in whose cookie id has this SHA-256, expired or not.
    async fn console_session(
        &self,
        id_digest: &[u8; 32],
    ) -> Result<Option<ConsoleSession>, StoreError>;

    /// Ends a console sign-in (sign-out, or refused on a check); an unknown one is no error.
    async fn delete_console_session(&self, id_digest: &[u8; 32]) -> Result<(), StoreError>;
}

mod ext;
pub mod rules;
mod sync_job;

pub use ext::StoreExt;
pub use sync_job::{
    BackfillState, BackfillStatus, ReconcileStatus, SweepStatus, SyncFinish, SyncJob, SyncLease,
    SyncSave, SyncSchedule, SyncStatus, WebhookStatus,
};
