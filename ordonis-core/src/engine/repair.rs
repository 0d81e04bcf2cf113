//! The repair loop: backfill on creation, reconcile runs on a timer and on demand, webhook
//! health. A run is a series of steps, one listing page each, on the integration's sync job:
//! each step stores what its page found in the inbox (as events whose source is the run,
//! deduplicated on object and version) and saves the cursor before the job is released, so
//! a worker killed mid-run costs at most one page, and the version guard, field policy and
//! ledger apply to repaired changes exactly as to webhooks.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{Engine, Loaded};
use crate::config::IntegrationConfig;
use crate::error::{Error, InvalidInput, ProviderError};
use crate::ids::{EventId, IntegrationId, WorkspaceId};
use crate::ledger::{CauseKind, LedgerDraft, Op, Outcome};
use crate::listing::{ListMode, ListRequest, WebhookCheck, WebhookState, listed_version};
use crate::model::ObjectKey;
use crate::provider::{ChangeHint, HintKind};
use crate::store::{
    BackfillState, InsertOutcome, JobFilter, JobState, NewInboxEvent, Queue, StoreExt, SyncFinish,
    SyncJob, SyncSave, SyncSchedule, SyncStatus,
};

/// How long a reconcile's repair counts are kept for the webhook-health warning.
const REPAIR_WINDOW_MS: i64 = 3_600_000;
/// How long a sync step may hold its job: one page is listed and stored under it.
const STEP_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// The inbox body of a change a listing found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ListedEvent {
    /// The run of the integration's sync job that found it.
    pub(crate) run: u64,
    /// What was found.
    pub(crate) hint: ChangeHint,
}

impl ListedEvent {
    pub(crate) fn from_body(body: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(body)
            .map_err(|e| InvalidInput::new("listed event", e.to_string()).into())
    }
}

/// The fields a committed unit changed because a reconcile found what no webhook brought:
/// applied (or conflicting) field values, deletions and restorations.
pub(crate) fn repaired_fields(drafts: &[LedgerDraft]) -> u64 {
    let n = drafts
        .iter()
        .filter(|d| d.cause.kind == CauseKind::Reconcile)
        .filter(|d| match d.op {
            Op::Set => matches!(d.outcome, Outcome::Applied | Outcome::Conflict),
            Op::Delete | Op::Restore | Op::LeaveScope | Op::EnterScope => true,
            // A comment no webhook brought (a person's, or the confirmation of ours).
            Op::CommentAdd | Op::CommentEdit | Op::CommentDelete => true,
            Op::Create
            | Op::Configure
            | Op::SessionStart
            | Op::SessionActivity
            | Op::SessionState
            | Op::SessionArtifact
            | Op::Link
            | Op::Unlink => false,
        })
        .count();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The repair state of an integration as the HTTP API shows it
/// (`GET /api/integrations/{id}` → `sync`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The backfill.
    pub backfill: BackfillReport,
    /// The reconcile runs.
    pub reconcile: ReconcileReport,
    /// The webhooks.
    pub webhook: WebhookReportView,
    /// The id sweep.
    pub sweep: SweepReport,
}

/// `sync.sweep`: the last id sweep (the scope's ids against the mapped tasks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// When it ran (`null` before the first).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    /// Mapped objects it found missing from the scope (or back in it), fetched since.
    pub found: u64,
    /// Its error, if it failed (it runs again at the next run's end).
    pub error: Option<String>,
}

/// `sync.backfill`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillReport {
    /// `pending`, `running`, `done` or `failed`.
    pub state: BackfillState,
    /// Objects imported into the inbox.
    pub imported: u64,
    /// Why it failed.
    pub error: Option<String>,
}

/// `sync.reconcile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// When the last run started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_at: Option<OffsetDateTime>,
    /// When a run last finished without error.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_ok_at: Option<OffsetDateTime>,
    /// When the next run is due (`null` while one runs).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run_at: Option<OffsetDateTime>,
    /// Fields the last run's changes repaired.
    pub repaired: u64,
    /// The last run's error.
    pub error: Option<String>,
}

/// `sync.webhook`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReportView {
    /// `unknown`, `healthy`, `failing` or `missing`.
    pub state: WebhookState,
    /// When the last webhook delivery arrived.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_delivery_at: Option<OffsetDateTime>,
    /// The provider's id of the (first) registered webhook.
    pub external_id: Option<String>,
    /// What is wrong, or what was done.
    pub detail: Option<String>,
}

/// What one sync step did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStep {
    /// Changes the page stored in the inbox (new rows; duplicates are not counted).
    pub stored: usize,
    /// The run finished with this step.
    pub finished: bool,
    /// The step failed with this error (recorded on the job).
    pub error: Option<String>,
}

fn dedupe_key(hint: &ChangeHint) -> String {
    let version = listed_version(hint);
    let what = match hint.kind {
        HintKind::Deleted => "deleted",
        HintKind::Missing => "missing",
        _ => "v",
    };
    format!(
        "listed:{}:{}@{what}{version}",
        hint.key.object_type, hint.key.external_id
    )
}

impl Engine {
    /// Creates the integration's sync job when it has a scope: a backfill due now, or with
    /// `backfill: false` a reconcile that starts from the present.
    pub(crate) async fn schedule_initial_sync(
        &self,
        id: IntegrationId,
        ws: &WorkspaceId,
        config: &IntegrationConfig,
    ) -> Result<(), Error> {
        if config.scope.is_null() {
            return Ok(());
        }
        let mut status = SyncStatus::default();
        if !config.sync.backfill {
            status.backfill.state = BackfillState::Done;
        }
        // The first run covers the whole scope: the sweeps' clock starts now.
        status.sweep.last_at = Some(OffsetDateTime::now_utc());
        status.sweep.scope = config.scope.clone();
        self.inner
            .store
            .schedule_sync(&SyncSchedule {
                integration_id: id,
                workspace_id: ws.clone(),
                mode: Some(if config.sync.backfill {
                    ListMode::Backfill
                } else {
                    ListMode::Reconcile
                }),
                at: OffsetDateTime::now_utc(),
                status,
            })
            .await?;
        Ok(())
    }

    /// Runs a reconcile of a workspace's integration now (or, while its backfill is
    /// pending, the backfill). `NotFound` for an integration of another workspace, `Invalid`
    /// for one without a scope.
    pub async fn reconcile_now(&self, ws: &WorkspaceId, id: IntegrationId) -> Result<(), Error> {
        let loaded = self.load(id).await?;
        if &loaded.record.workspace_id != ws {
            return Err(Error::NotFound(format!("integration {id}")));
        }
        if loaded.config.scope.is_null() {
            return Err(InvalidInput::new(
                "scope",
                "the integration has no scope to reconcile (it only reacts to webhooks)",
            )
            .into());
        }
        if self.inner.store.sync_job(id).await?.is_none() {
            return self.schedule_initial_sync(id, ws, &loaded.config).await;
        }
        self.inner
            .store
            .schedule_sync(&SyncSchedule {
                integration_id: id,
                workspace_id: ws.clone(),
                mode: None,
                at: OffsetDateTime::now_utc(),
                status: SyncStatus::default(),
            })
            .await?;
        Ok(())
    }

    /// The repair state of an integration, `None` when it has no sync job (no scope).
    pub async fn sync_report(&self, id: IntegrationId) -> Result<Option<SyncReport>, Error> {
        let Some(job) = self.inner.store.sync_job(id).await? else {
            return Ok(None);
        };
        let s = &job.status;
        let running = job.state == JobState::Processing || s.in_run;
        Ok(Some(SyncReport {
            backfill: BackfillReport {
                state: s.backfill.state,
                imported: s.backfill.imported,
                error: s.backfill.error.clone(),
            },
            reconcile: ReconcileReport {
                last_run_at: s.reconcile.last_run_at,
                last_ok_at: s.reconcile.last_ok_at,
                next_run_at: (!running && job.state == JobState::Pending)
                    .then_some(job.next_run_at),
                repaired: job.repaired,
                error: s.reconcile.error.clone(),
            },
            webhook: WebhookReportView {
                state: s.webhook.state,
                last_delivery_at: self.last_delivery_at(id).await?,
                external_id: s.webhook.external_ids.first().cloned(),
                detail: s.webhook.detail.clone(),
            },
            sweep: SweepReport {
                last_run_at: s.sweep.last_at,
                found: s.sweep.found,
                error: s.sweep.error.clone(),
            },
        }))
    }

    /// The time of the newest webhook delivery of an integration among its recent inbox rows.
    async fn last_delivery_at(&self, id: IntegrationId) -> Result<Option<OffsetDateTime>, Error> {
        let rows = self
            .inner
            .store
            .jobs(&JobFilter {
                integration_id: Some(id),
                limit: 200,
                ..JobFilter::new(Queue::Inbox)
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|j| j.into_event())
            .find(|e| ListMode::parse(&e.auth).is_none())
            .map(|e| e.received_at))
    }

    /// Objects this integration pushed to recently (Jira's `reconcileIssues`).
    async fn recently_written(&self, id: IntegrationId) -> Vec<ObjectKey> {
        let Ok(pushes) = self
            .inner
            .store
            .jobs(&JobFilter {
                integration_id: Some(id),
                state: Some(JobState::Done),
                limit: 20,
                ..JobFilter::new(Queue::Outbox)
            })
            .await
        else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for p in pushes.into_iter().filter_map(|j| j.into_push()) {
            if let Ok(Some(task)) = self.inner.store.task(p.task_id).await
                && let Some(link) = task.external.iter().find(|l| l.integration_id == id)
                && !keys.contains(&link.key)
            {
                keys.push(link.key.clone());
            }
        }
        keys
    }

    /// Runs one step of a claimed sync job: one listing page, stored in the inbox, the
    /// cursor saved, the job released (due again at once while the run goes on, at the next
    /// interval when it is over). Provider and store failures are recorded on the job, never
    /// lost: a rate limit pauses the integration and the run resumes at its page afterwards.
    pub async fn run_sync(&self, job: SyncJob) -> Result<SyncStep, Error> {
        let Some(lease) = job.lease.clone() else {
            return Err(Error::NotFound(format!(
                "sync job of {} is not leased",
                job.integration_id
            )));
        };
        let now = OffsetDateTime::now_utc();
        let loaded = match self.load(job.integration_id).await {
            Ok(l) => l,
            Err(e) => {
                let mut status = job.status.clone();
                status.reconcile.error = Some(e.to_string());
                let save = SyncSave {
                    cursor: job.cursor.clone(),
                    status,
                    start_run: false,
                    lease_until: now,
                    finish: Some(SyncFinish {
                        mode: job.mode,
                        at: now,
                        failed: true,
                        refund_attempt: false,
                    }),
                };
                self.inner.store.save_sync(&lease, &save).await?;
                return Err(e);
            }
        };
        let interval = loaded.config.sync.reconcile_every();
        let mut status = job.status.clone();
        status.budget = self.budget_seen(&loaded, &status);
        if let Some(hold) = status.budget.as_ref().and_then(|b| b.repair_hold(now)) {
            return self.hold_step(&job, lease, status, hold).await;
        }
        let starting = !status.in_run;
        if starting {
            status.in_run = true;
            match job.mode {
                ListMode::Backfill => {
                    status.backfill.state = BackfillState::Running;
                    status.backfill.error = None;
                    status.backfill.scope = loaded.config.scope.clone();
                }
                ListMode::Reconcile => {
                    status.reconcile.found = 0;
                    self.start_reconcile(&loaded, &job, &mut status, now).await;
                }
            }
        }
        let recent = match job.mode {
            ListMode::Reconcile => self.recently_written(job.integration_id).await,
            ListMode::Backfill => Vec::new(),
        };
        let req = ListRequest {
            mode: job.mode,
            scope: &loaded.config.scope,
            cursor: job.cursor.as_ref(),
            recent: &recent,
            page_size: self.inner.config.list_page_size.max(1),
        };
        let page = match repair_of(&loaded) {
            Ok(r) => r.list_changes(&loaded.ctx, &req).await,
            Err(e) => Err(e),
        };
        let run = if starting { job.run + 1 } else { job.run };
        status.budget = self.budget_seen(&loaded, &status);
        let (page, stored) = match page {
            Ok(page) => match self
                .store_hints(&loaded, job.mode, run, &page.changes)
                .await
            {
                Ok(stored) => (page, stored),
                Err(e) => {
                    return self
                        .step_failed(&job, lease, status, starting, e, interval)
                        .await;
                }
            },
            Err(e) => {
                return self
                    .step_failed(&job, lease, status, starting, e.into(), interval)
                    .await;
            }
        };
        match job.mode {
            ListMode::Backfill => status.backfill.imported += stored as u64,
            ListMode::Reconcile => status.reconcile.found += stored as u64,
        }
        let finish = if page.done {
            status.in_run = false;
            // The id sweep, when due, after the run (a backfill over a new scope first).
            let swept = match Self::sweep_due(&loaded, &status, now) {
                Some(cause) => {
                    self.sweep(&loaded, run, &mut status, now).await;
                    Some(cause)
                }
                None => None,
            };
            // The scope changed after the last backfill began (a `PATCH` while this step
            // was leased cannot re-schedule the job): the new scope is backfilled next, now.
            // A status from before the scope was recorded takes the current one as listed.
            if status.backfill.scope.is_null() {
                status.backfill.scope = loaded.config.scope.clone();
            }
            let widen =
                !loaded.config.scope.is_null() && status.backfill.scope != loaded.config.scope;
            match job.mode {
                ListMode::Backfill => {
                    status.backfill.state = BackfillState::Done;
                    status.backfill.error = None;
                }
                ListMode::Reconcile => {
                    status.reconcile.last_ok_at = Some(now);
                    status.reconcile.error = None;
                    status.reconcile.runs_ok += 1;
                }
            }
            SyncFinish {
                mode: if widen {
                    ListMode::Backfill
                } else {
                    ListMode::Reconcile
                },
                // After a scope change the webhooks are checked at once (those of a project
                // that left it are deleted, a new project's registered).
                at: if widen || swept == Some(super::sweep::SweepCause::ScopeChanged) {
                    now
                } else {
                    now + interval
                },
                failed: false,
                refund_attempt: false,
            }
        } else {
            SyncFinish {
                mode: job.mode,
                at: self.next_page_at(status.budget.as_ref(), OffsetDateTime::now_utc()),
                failed: false,
                refund_attempt: false,
            }
        };
        let save = SyncSave {
            cursor: Some(page.cursor),
            status,
            start_run: starting,
            lease_until: now + STEP_LEASE,
            finish: Some(finish),
        };
        self.inner.store.save_sync(&lease, &save).await?;
        Ok(SyncStep {
            stored,
            finished: page.done,
            error: None,
        })
    }

    /// The first step of a reconcile run: the last run's repairs into the health window,
    /// the webhooks checked (and registered or re-created when the integration asks for it).
    async fn start_reconcile(
        &self,
        loaded: &Loaded,
        job: &SyncJob,
        status: &mut SyncStatus,
        now: OffsetDateTime,
    ) {
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        status.reconcile.last_run_at = Some(now);
        if job.run > 0 && job.repaired > 0 {
            status.reconcile.recent_repairs.push((now_ms, job.repaired));
        }
        status
            .reconcile
            .recent_repairs
            .retain(|(at, _)| now_ms - at < REPAIR_WINDOW_MS);
        let last_delivery_at = self
            .last_delivery_at(job.integration_id)
            .await
            .ok()
            .flatten();
        let target = self.webhook_url(loaded);
        let check = WebhookCheck {
            scope: &loaded.config.scope,
            target_url: target.as_deref(),
            known: &status.webhook.external_ids,
            last_delivery_at,
            now,
        };
        let mut report = match repair_of(loaded) {
            Ok(r) => r.check_webhooks(&loaded.ctx, &check).await,
            Err(e) => Err(e),
        };
        // Webhooks whose project left the scope (or whose filter is an earlier scope's) go.
        let stale = report.as_ref().map(|r| r.stale.clone()).unwrap_or_default();
        let fitting: Vec<String> = status
            .webhook
            .external_ids
            .iter()
            .filter(|id| !stale.contains(id))
            .cloned()
            .collect();
        let check = WebhookCheck {
            known: &fitting,
            ..check
        };
        if matches!(&report, Ok(r) if r.state == WebhookState::Missing)
            && loaded.config.sync.register_webhook
        {
            report = self.register_webhooks(loaded, &check).await;
            if let Ok(r) = &mut report {
                let made = "re-created by Ordonis";
                r.detail = Some(match r.detail.take() {
                    Some(d) => format!("{d}; {made}"),
                    None => made.to_owned(),
                });
            }
        }
        status.webhook.checked_at = Some(now);
        match report {
            Ok(r) => {
                status.webhook.state = r.state;
                if !r.external_ids.is_empty() || r.state == WebhookState::Missing {
                    status.webhook.external_ids = r.external_ids;
                }
                status.webhook.expires_at = r.expires_at;
                status.webhook.detail = r.detail;
            }
            Err(e) => {
                status.webhook.detail = Some(format!("webhook check failed: {e}"));
            }
        }
        if let Some(done) = self.retire_webhooks(loaded, &stale).await {
            status.webhook.external_ids.retain(|id| !stale.contains(id));
            status.webhook.detail = Some(match status.webhook.detail.take() {
                Some(d) => format!("{d}; {done}"),
                None => done,
            });
        }
        // Admin webhooks cannot be asked about: a reconcile that keeps repairing is the sign
        // that deliveries are lost.
        let repaired: u64 = status.reconcile.recent_repairs.iter().map(|(_, n)| n).sum();
        if repaired > 0 && status.webhook.state != WebhookState::Missing {
            status.webhook.state = WebhookState::Failing;
            let warning = format!("{repaired} changes arrived only by reconcile in the last hour");
            status.webhook.detail = Some(match status.webhook.detail.take() {
                Some(d) if !d.contains("only by reconcile") => format!("{warning}; {d}"),
                _ => warning,
            });
        }
    }

    /// Registers the integration's webhooks with a handshake expected while the provider
    /// creates them (Asana completes it during the call). A handshake is adopted once per
    /// expectation, and each webhook brings its own (one per Asana project), so the call is
    /// repeated, expecting again, while it creates more and some are still missing.
    async fn register_webhooks(
        &self,
        loaded: &Loaded,
        check: &WebhookCheck<'_>,
    ) -> Result<crate::listing::WebhookReport, ProviderError> {
        let handshake = loaded.provider.capabilities().webhook_handshake;
        let mut made: Vec<String> = Vec::new();
        let mut report;
        let mut round = 0;
        loop {
            round += 1;
            if handshake && let Err(e) = self.expect_handshake(loaded.record.id).await {
                return Err(ProviderError::Terminal(format!(
                    "could not expect a handshake: {e}"
                )));
            }
            let known: Vec<String> = check.known.iter().chain(&made).cloned().collect();
            let this = WebhookCheck {
                known: &known,
                ..*check
            };
            report = match repair_of(loaded) {
                Ok(r) => r.register_webhooks(&loaded.ctx, &this).await,
                Err(e) => Err(e),
            };
            let before = made.len();
            if let Ok(r) = &report {
                for id in &r.external_ids {
                    if !made.contains(id) {
                        made.push(id.clone());
                    }
                }
            }
            let progress = made.len() > before;
            let missing = matches!(&report, Ok(r) if r.state == WebhookState::Missing);
            if !(handshake && missing && progress) || round >= 16 {
                break;
            }
        }
        if handshake {
            self.clear_expected_handshake(loaded.record.id).await;
        }
        let report = report.map(|mut r| {
            for id in made {
                if !r.external_ids.contains(&id) {
                    r.external_ids.push(id);
                }
            }
            r
        });
        // Each live webhook keeps its secret (the newest ones); those of webhooks gone go.
        if handshake && let Ok(r) = &report {
            self.prune_webhook_secrets(loaded.record.id, r.external_ids.len())
                .await;
        }
        report
    }

    /// Keeps the newest `live` webhook secrets (at least the rotation overlap).
    async fn prune_webhook_secrets(&self, id: IntegrationId, live: usize) {
        let Ok(fresh) = self.load(id).await else {
            return;
        };
        let keep = live.max(self.inner.config.webhook_secret_overlap).max(1);
        if fresh.ctx.secrets.webhook_secrets.len() <= keep {
            return;
        }
        let mut secrets = fresh.ctx.secrets.clone();
        secrets.webhook_secrets.truncate(keep);
        if let Err(e) = self
            .save_integration(&fresh.record, &fresh.config, &secrets)
            .await
        {
            tracing::warn!(error = %e, "could not prune the webhook secrets");
        }
    }

    /// Stops expecting a handshake the registration did not use.
    async fn clear_expected_handshake(&self, id: IntegrationId) {
        let Ok(fresh) = self.load(id).await else {
            return;
        };
        let mut config = fresh.config.clone();
        if config.expecting_handshake {
            config.disarm_handshake();
            if let Err(e) = self
                .save_integration(&fresh.record, &config, &fresh.ctx.secrets)
                .await
            {
                tracing::warn!(error = %e, "could not clear the expected handshake");
            }
        }
    }

    /// The integration's webhook URL on this host, when the host configured its template.
    fn webhook_url(&self, loaded: &Loaded) -> Option<String> {
        self.inner.config.webhook_url.as_ref().map(|t| {
            t.replace("{provider}", loaded.record.provider.as_str())
                .replace("{id}", &loaded.record.id.to_string())
        })
    }

    /// Stores what a listing (or a sweep) found in the inbox, as events of run `run` of
    /// `mode`; the number of new rows.
    pub(super) async fn store_hints(
        &self,
        loaded: &Loaded,
        mode: ListMode,
        run: u64,
        changes: &[ChangeHint],
    ) -> Result<usize, Error> {
        if changes.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::with_capacity(changes.len());
        for hint in changes {
            let body = serde_json::to_vec(&ListedEvent {
                run,
                hint: hint.clone(),
            })
            .map_err(|e| InvalidInput::new("listed event", e.to_string()))?;
            let body_sha256 = hex::encode(Sha256::digest(&body));
            events.push(NewInboxEvent {
                id: EventId::new(),
                workspace_id: loaded.record.workspace_id.clone(),
                integration_id: loaded.record.id,
                dedupe_key: dedupe_key(hint),
                delivery_id: None,
                object_key: Some(hint.key.external_id.clone()),
                headers: Vec::new(),
                body: body.into(),
                body_sha256,
                auth: mode.as_str().to_owned(),
                state: JobState::Pending,
                note: None,
            });
        }
        let outcomes = self.inner.store.insert_events(&events).await?;
        Ok(outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Inserted(_)))
            .count())
    }

    /// Records a failed step and releases the job: a rate limit pauses the integration and
    /// the run waits for it (the attempt given back); a temporary failure retries with
    /// backoff; anything else ends the run with its error (a backfill stops as `failed`, a
    /// reconcile tries again at the next interval).
    async fn step_failed(
        &self,
        job: &SyncJob,
        lease: crate::store::SyncLease,
        mut status: SyncStatus,
        starting: bool,
        err: Error,
        interval: std::time::Duration,
    ) -> Result<SyncStep, Error> {
        let now = OffsetDateTime::now_utc();
        let message = err.to_string();
        let mut finish = SyncFinish {
            mode: job.mode,
            at: now,
            failed: false,
            refund_attempt: false,
        };
        match &err {
            Error::Provider(ProviderError::RateLimited { until, .. }) => {
                crate::metrics::rate_limit_pause();
                if let Err(e) = self
                    .inner
                    .store
                    .set_paused_until(job.integration_id, Some(*until))
                    .await
                {
                    tracing::warn!(error = %e, "could not pause integration");
                }
                finish.at = *until;
                finish.refund_attempt = true;
            }
            Error::Provider(
                ProviderError::ObjectBusy { until, .. } | ProviderError::KindLimited { until, .. },
            ) => {
                finish.at = *until;
                finish.refund_attempt = true;
            }
            Error::Provider(p) if p.is_retryable() => {
                finish.at = now + self.inner.config.backoff.delay(job.attempts);
            }
            Error::Store(s) if s.is_retryable() => {
                finish.at = now + self.inner.config.backoff.delay(job.attempts);
                finish.refund_attempt = false;
            }
            _ => {
                status.in_run = false;
                match job.mode {
                    ListMode::Backfill => {
                        status.backfill.state = BackfillState::Failed;
                        finish.failed = true;
                    }
                    ListMode::Reconcile => {
                        status.reconcile.runs_failed += 1;
                        finish.at = now + interval;
                    }
                }
            }
        }
        match job.mode {
            ListMode::Backfill => status.backfill.error = Some(message.clone()),
            ListMode::Reconcile => status.reconcile.error = Some(message.clone()),
        }
        let save = SyncSave {
            cursor: job.cursor.clone(),
            status,
            start_run: starting,
            lease_until: now,
            finish: Some(finish),
        };
        self.inner.store.save_sync(&lease, &save).await?;
        Ok(SyncStep {
            stored: 0,
            finished: false,
            error: Some(message),
        })
    }
}

/// The provider's repair loop, or the `Terminal` error of a provider that cannot list.
fn repair_of(loaded: &Loaded) -> Result<&dyn crate::provider::RepairProvider, ProviderError> {
    loaded.provider.repair().ok_or_else(|| {
        ProviderError::Terminal(format!("{} cannot list changes", loaded.provider.kind()))
    })
}
