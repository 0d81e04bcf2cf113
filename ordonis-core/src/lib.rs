#![doc = include_str!("../README.md")]

pub mod actor;
pub mod config;
pub mod engine;
pub mod error;
pub mod ids;
pub mod ledger;
pub mod policy;
pub mod provider;
pub mod secrets;
pub mod signals;
pub mod store;
pub mod sync;
pub mod sync_state;
pub mod task;
pub mod vera;
pub mod worker;

pub use actor::{Actor, ActorKind, Principal};
pub use config::{Backoff, EngineConfig, IntegrationConfig};
pub use engine::{
    ChangeReceipt, Engine, EngineBuilder, IngestOutcome, IngestResponse, NewIntegration,
};
pub use error::{Error, InvalidInput, ProviderError, StoreError};
pub use ids::{ActionId, EventId, IntegrationId, OutboxId, TaskId, WorkspaceId};
pub use ledger::{
    Cause, CauseKind, Evidence, Ledger, LedgerDraft, LedgerEntry, Op, Outcome, StoredCheckpoint,
};
pub use policy::{Direction, FieldPolicy, FieldRule, Owner};
pub use provider::{
    Capabilities, ChangeHint, FieldChange, HintKind, ObjectKey, Provider, ProviderContext,
    ProviderKind, PushOutcome, RemoteActor, RemoteTask, WebhookAuth, WebhookRequest,
};
pub use secrets::{ApiAuth, IntegrationSecrets, Keyring, SealedSecrets, SecretKey};
pub use store::{
    ClaimRequest, CommitReceipt, Completion, EventFilter, InboxEvent, InsertOutcome,
    IntegrationRecord, IntegrationUpdate, Job, JobFilter, JobId, JobState, Lease, NewInboxEvent,
    OutboxJob, Queue, Retry, Store, StoreExt, TaskPage, TaskWrite, UnitOfWork,
};
pub use sync_state::{FieldSync, Intent, SourceVersion};
pub use task::{
    Assignee, ExternalRef, Field, FieldPatch, FieldValue, Priority, PriorityLevel, Status,
    StatusCategory, Task, TaskFields,
};
pub use worker::{BatchReport, Worker, WorkerConfig};
