#![doc = include_str!("../README.md")]

pub mod actor;
pub mod config;
pub mod engine;
pub mod error;
pub mod ids;
pub mod ledger;
mod model;
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
pub use config::{Backoff, EngineConfig, IntegrationConfig, ProviderState};
pub use engine::{
    ChangeReceipt, Engine, EngineBuilder, IngestOutcome, IngestResponse, NewIntegration,
};
pub use error::{Error, InvalidInput, ProviderError, StoreError};
pub use ids::{ActionId, EventId, IntegrationId, OutboxId, TaskId, WorkspaceId};
pub use ledger::{
    Cause, CauseKind, Evidence, Ledger, LedgerDraft, LedgerEntry, Op, Outcome, StoredCheckpoint,
};
pub use model::{
    Assignee, ExternalRef, Field, FieldPatch, FieldValue, ObjectKey, ObjectType, Priority,
    PriorityLevel, ProviderKind, Status, StatusCategory,
};
pub use policy::{Direction, FieldPolicy, FieldRule, Owner};
pub use provider::{
    Capabilities, ChangeHint, FieldChange, HintKind, Provider, ProviderContext, PushOutcome,
    RemoteActor, RemoteTask, WebhookAuth, WebhookRequest,
};
pub use secrets::{ApiAuth, IntegrationSecrets, Keyring, SealedSecrets, SecretKey};
pub use store::{
    ClaimRequest, CommitReceipt, Completion, EventFilter, Inbox, InboxEvent, InsertOutcome,
    IntegrationRecord, Integrations, JobState, Lease, NewInboxEvent, Outbox, OutboxJob, Retry,
    Store, TaskWrite, Tasks, UnitOfWork,
};
pub use sync_state::{FieldSync, Intent, SourceVersion};
pub use task::{Task, TaskFields};
pub use worker::{BatchReport, Worker, WorkerConfig};
