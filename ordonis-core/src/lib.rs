#![doc = include_str!("../README.md")]

// The public API is the crate root's re-exports below, plus the modules that are public:
// the contracts a store implements (`store`, `ledger`), the VERA ledger (`vera`) and the
// webhook signal helpers adapters share (`provider_http`). Everything else is internal.
mod actor;
mod budget;
mod comments;
mod config;
mod console_session;
mod create;
mod engine;
mod error;
/// The per-field merge rules. Not a stable API: public, and hidden from the docs, only so
/// the workspace's micro-benchmarks can time `apply_remote` on its own.
#[doc(hidden)]
pub mod field_merge;
mod ids;
pub mod ledger;
mod links;
mod listing;
pub mod markdown;
pub mod metrics;
mod model;
mod people;
mod policy;
mod provider;
pub mod provider_http;
mod secrets;
mod session;
pub mod store;
mod sync_state;
mod task;
mod task_comment;
pub mod task_query;
pub mod vera;
mod worker;

pub use actor::{Actor, ActorKind, MAX_DELEGATION_DEPTH, Principal};
pub use budget::{ApiBudget, REPAIR_STOP_PERCENT};
pub use comments::{CommentDraft, CommentPage, CommentProvider, MAX_MARKER_PAGES, RemoteComment};
pub use config::{
    Backoff, CREATING_WINDOW, CreateDefaults, DEFAULT_HANDSHAKE_WINDOW, DEFAULT_NEAR_LIMIT_GAP,
    DEFAULT_RETRY_WINDOW, EngineConfig, IntegrationConfig, SessionSettings, SyncSettings,
};
pub use console_session::ConsoleSession;
pub use create::{CreateDraft, CreateProvider, CreateState, NewLink, TaskCreate};
pub use engine::{
    ATTRIBUTION_TTL, AccessProblem, AccountView, ActivityReceipt, BackfillReport, ChangeReceipt,
    CommentReceipt, CreateReceipt, Engine, EngineBuilder, INGEST_CACHE_TTL, IngestOutcome,
    IngestResponse, IntegrationChange, MAX_ACTIVITY_ID, NewActivity, NewIntegration, PeopleView,
    PersonView, ReconcileReport, Resolution, SessionActivity, SweepReport, SyncReport, SyncStep,
    UnmatchedAccount, WebhookReportView,
};
pub use error::{Error, ErrorSource, InvalidInput, ProviderError, StoreError};
pub use ids::{
    ActionId, CommentId, EventId, IntegrationId, NEW_WORKSPACE_ID_CHARSET, OutboxId, SessionId,
    TaskId, WorkspaceId,
};
pub use ledger::{
    Cause, CauseKind, CommentRecord, Evidence, Ledger, LedgerDraft, LedgerEntry, Op, Outcome,
    SessionRecord, StoredCheckpoint,
};
pub use links::{LinkDraft, LinkProvider, RemoteLink};
pub use listing::{
    IdsPage, IdsRequest, ListMode, ListPage, ListRequest, WebhookCheck, WebhookReport,
    WebhookState, listed_version,
};
pub use model::{
    Assignee, ExternalRef, Field, FieldPatch, FieldValue, ObjectKey, ObjectType, Priority,
    PriorityLevel, ProviderKind, Status, StatusCategory,
};
pub use people::{AccountProvider, AccountRef, Person, PersonKind, RemoteAccount, SeenAccount};
pub use policy::{Direction, FieldPolicy, FieldRule, Owner};
pub use provider::{
    Capabilities, ChangeHint, ConfigToCheck, FieldChange, HintKind, Provider, ProviderContext,
    PushOutcome, PushPlan, RemoteActor, RemoteTask, RepairProvider, ValueCheck, WebhookAuth,
    WebhookRequest,
};
pub use secrets::{ApiAuth, IntegrationSecrets, Keyring, SealedSecrets, SecretKey};
pub use session::{
    ActivityContent, ActivityKind, ActivityRef, AgentSession, Artifact, MAX_ACTIVITY_BYTES,
    SessionLink, SessionState, SessionWrite, check_session_actor,
};
pub use store::{
    BackfillState, BackfillStatus, ReconcileStatus, SweepStatus, SyncFinish, SyncJob, SyncLease,
    SyncSave, SyncSchedule, SyncStatus, WebhookStatus,
};
pub use store::{
    ClaimRequest, CommitReceipt, Completion, EventFilter, FailureKind, InboxEvent, InsertOutcome,
    IntegrationRecord, IntegrationState, IntegrationUpdate, Job, JobFailure, JobFilter, JobId,
    JobState, Lease, NewInboxEvent, OutboxJob, Queue, Retry, Store, StoreExt, TaskPage, TaskWrite,
    UnitOfWork,
};
// Keyset paging of the queues (issue #29).
pub use store::JobCursor;
pub use sync_state::{FieldSync, Intent, SourceVersion};
pub use task::{Task, TaskFields};
pub use task_comment::{
    COLLABHUB_SOURCE, CommentOp, CommentSettings, CommentSync, CommentSyncState, CommentWrite,
    MAX_COMMENT_BYTES, TaskComment, check_comment_body,
};
pub use task_query::{
    AssigneeFilter, ConflictDelta, ConflictMask, ListedTask, SyncState, TaskCursor, TaskList,
    TaskQuery, TaskSort,
};
pub use worker::{BatchReport, RETIRED_WEBHOOKS_EVERY, Worker, WorkerConfig};
