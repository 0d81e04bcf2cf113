//! The repair loop's durable job: one row per integration that carries its backfill and its
//! reconcile runs, their page cursor and what they found.
//!
//! One row per integration is what makes "at most one backfill or reconcile per integration
//! at a time" hold by construction; the row is leased like a queue row (an expired lease is
//! claimed again, and the run resumes from the cursor saved with its last page), and is
//! skipped while its integration is paused (rate limit) or not active.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{IntegrationId, WorkspaceId};
use crate::listing::{ListMode, WebhookState};

/// An integration's sync job, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncJob {
    /// The integration (also the row's id).
    pub integration_id: IntegrationId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The run the job does next (or is doing).
    pub mode: ListMode,
    /// `Pending` (waiting for `next_run_at`), `Processing` (leased) or `Failed` (stopped
    /// with an error until scheduled again).
    pub state: super::JobState,
    /// Claims since the job was last scheduled or finished a run.
    pub attempts: u32,
    /// When the next run (or the next attempt of this one) is due.
    pub next_run_at: OffsetDateTime,
    /// The listing cursor: mid-run, the page to continue from; between runs, where the next
    /// run starts. `None` before the first page.
    pub cursor: Option<serde_json::Value>,
    /// What the runs found, maintained by the engine.
    pub status: SyncStatus,
    /// The number of the current (or last) run; listed events carry it.
    pub run: u64,
    /// Fields changed by the events of run `run` so far.
    pub repaired: u64,
    /// Fields changed by every reconcile run's events.
    pub repaired_total: u64,
    /// The lease, while `Processing`.
    pub lease: Option<SyncLease>,
}

/// Proof that a worker holds an integration's sync job.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncLease {
    /// The integration.
    pub integration_id: IntegrationId,
    /// The claiming worker.
    pub owner: String,
    /// The job's attempt number at claim time.
    pub attempt: u32,
    /// When the lease expires.
    pub expires_at: OffsetDateTime,
}

/// Creates or re-arms an integration's sync job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSchedule {
    /// The integration.
    pub integration_id: IntegrationId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// The run to do; on an existing job `None` keeps its mode.
    pub mode: Option<ListMode>,
    /// When it is due; an existing pending job keeps the earlier of the two times.
    pub at: OffsetDateTime,
    /// The status a new job starts with (an existing job keeps its own).
    pub status: SyncStatus,
}

/// What a run records after a page (under its lease).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSave {
    /// The new cursor.
    pub cursor: Option<serde_json::Value>,
    /// The new status.
    pub status: SyncStatus,
    /// A new run starts with this page: the run number is incremented and its repair count
    /// reset.
    pub start_run: bool,
    /// The lease is extended until this time.
    pub lease_until: OffsetDateTime,
    /// The run is over (done or stopped): the job is released, due again at `next_run_at` in
    /// `mode`, or `Failed` when `failed`.
    pub finish: Option<SyncFinish>,
}

/// How a run ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFinish {
    /// The next run.
    pub mode: ListMode,
    /// When it is due.
    pub at: OffsetDateTime,
    /// Stop the job (`Failed`) instead: it runs again only when scheduled.
    pub failed: bool,
    /// Give the claim's attempt back (a rate-limit deferral).
    pub refund_attempt: bool,
}

/// The backfill's state, as the HTTP API shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Not started.
    #[default]
    Pending,
    /// Crawling.
    Running,
    /// Finished (or skipped: `backfill: false`).
    Done,
    /// Stopped with an error.
    Failed,
}

/// What the backfill did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillStatus {
    /// Its state.
    pub state: BackfillState,
    /// Objects it stored in the inbox.
    pub imported: u64,
    /// Why it failed (or why it waits).
    pub error: Option<String>,
    /// The scope the latest backfill run listed (`null` before one ran, or in a database
    /// from before this was recorded). A run that ends under another scope starts a
    /// backfill of the new one: a scope widened while a step was running is imported too.
    #[serde(default)]
    pub scope: serde_json::Value,
}

/// What the reconcile runs did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileStatus {
    /// When the last run started.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    /// When a run last finished without error.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_ok_at: Option<OffsetDateTime>,
    /// The last run's error.
    pub error: Option<String>,
    /// Runs that finished without error.
    #[serde(default)]
    pub runs_ok: u64,
    /// Runs that ended with an error.
    #[serde(default)]
    pub runs_failed: u64,
    /// Objects the last run stored in the inbox (changes it found; most repair nothing).
    #[serde(default)]
    pub found: u64,
    /// Recent runs' repair counts, `(finished at, fields repaired)`, the last hour's: a
    /// reconcile that keeps repairing means webhooks are being lost.
    #[serde(default)]
    pub recent_repairs: Vec<(i64, u64)>,
}

/// What the engine knows of the integration's webhooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookStatus {
    /// Their state.
    pub state: WebhookState,
    /// The provider's ids of the registered webhooks.
    #[serde(default)]
    pub external_ids: Vec<String>,
    /// When the earliest expires, if they do.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// What is wrong, or what was done.
    pub detail: Option<String>,
    /// When they were last checked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub checked_at: Option<OffsetDateTime>,
}

/// Everything a sync job's runs recorded (stored as JSON on the job).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// A run is underway: its next step continues from the saved cursor.
    #[serde(default)]
    pub in_run: bool,
    /// The backfill.
    #[serde(default)]
    pub backfill: BackfillStatus,
    /// The reconcile runs.
    #[serde(default)]
    pub reconcile: ReconcileStatus,
    /// The webhooks.
    #[serde(default)]
    pub webhook: WebhookStatus,
    /// The id sweep.
    #[serde(default)]
    pub sweep: SweepStatus,
    /// The API budget the provider's answers last showed (saved with each step, so every
    /// process's repair loop paces by the newest one seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::budget::ApiBudget>,
}

/// What the id sweep did (the scope's ids against the mapped tasks).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepStatus {
    /// When the last sweep ran (or, before the first, when the sweeps' clock started: the
    /// end of the first run, whose listing covered everything).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_at: Option<OffsetDateTime>,
    /// The scope the last sweep covered: another scope now makes a sweep due at once.
    #[serde(default)]
    pub scope: serde_json::Value,
    /// Mapped objects the last sweep found missing from the scope (or back in it) and
    /// stored in the inbox to be fetched.
    #[serde(default)]
    pub found: u64,
    /// The last sweep's error.
    #[serde(default)]
    pub error: Option<String>,
}
