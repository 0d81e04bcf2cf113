//! Workers: claim inbox and outbox rows in batches under a lease, process them with bounded
//! concurrency, retry with backoff, pause an integration on a rate limit, dead-letter after the
//! last attempt, and stop gracefully on a cancellation token.

use std::time::Duration;

use futures::StreamExt;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::error::{Error, ProviderError, StoreError};
use crate::store::{
    ClaimRequest, FailureKind, InboxEvent, Job, JobFailure, JobState, Lease, Queue, Retry, StoreExt,
};

/// Worker settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Worker id (lease owner); unique per worker.
    pub id: String,
    /// Rows claimed per batch (per queue).
    pub batch_size: usize,
    /// Rows processed at once.
    pub concurrency: usize,
    /// Lease length: a row whose worker died is claimable again after this.
    pub lease: Duration,
    /// Sleep when there was nothing to do.
    pub idle_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            id: format!("worker-{}", uuid::Uuid::now_v7()),
            batch_size: 32,
            concurrency: 8,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows completed.
    pub completed: usize,
    /// Rows that failed and will be retried (or were deferred by a rate limit).
    pub retried: usize,
    /// Rows that failed for good (dead or failed).
    pub gave_up: usize,
    /// Rows released unprocessed because of shutdown.
    pub released: usize,
}

impl BatchReport {
    fn add(&mut self, other: BatchReport) {
        self.claimed += other.claimed;
        self.completed += other.completed;
        self.retried += other.retried;
        self.gave_up += other.gave_up;
        self.released += other.released;
    }
}

/// How often a running worker sweeps for stale agent sessions.
const STALE_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How often a running worker retries deleting the webhooks of disabled integrations
/// ([`Engine::delete_retired_webhooks`]): it reads every workspace's integrations, so rarely.
pub const RETIRED_WEBHOOKS_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// A worker over an engine.
#[derive(Debug, Clone)]
pub struct Worker {
    engine: Engine,
    config: WorkerConfig,
}

impl Worker {
    /// A worker.
    pub fn new(engine: Engine, config: WorkerConfig) -> Self {
        Self { engine, config }
    }

    /// Runs until `shutdown` is cancelled. In-flight rows finish; claimed rows not yet started
    /// are released (their attempt does not count).
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut swept: Option<std::time::Instant> = None;
        let mut retired: Option<std::time::Instant> = None;
        while !shutdown.is_cancelled() {
            if retired.is_none_or(|at| at.elapsed() >= RETIRED_WEBHOOKS_EVERY) {
                retired = Some(std::time::Instant::now());
                if let Err(e) = self.engine.delete_retired_webhooks().await {
                    tracing::warn!(worker = %self.config.id, error = %e, "retired webhooks sweep failed");
                }
            }
            // The stale sweep, now and then: cheap (one indexed query) and idempotent, so
            // every worker may run it.
            if swept.is_none_or(|at| at.elapsed() >= STALE_SWEEP_EVERY) {
                swept = Some(std::time::Instant::now());
                let marked = self.engine.mark_stale_sessions().await;
                if let Err(e) = &marked {
                    tracing::warn!(worker = %self.config.id, error = %e, "stale sweep failed");
                }
                if let Ok(n @ 1..) = marked {
                    tracing::info!(worker = %self.config.id, sessions = n, "marked stale");
                }
            }
            match self.run_once(&shutdown).await {
                Ok(r) if r.claimed > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(worker = %self.config.id, error = %e, "claim failed"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config.idle_poll) => {}
            }
        }
    }

    /// Claims and processes one batch from each queue.
    pub async fn run_once(&self, shutdown: &CancellationToken) -> Result<BatchReport, StoreError> {
        let req = ClaimRequest {
            worker: self.config.id.clone(),
            limit: self.config.batch_size,
            lease: self.config.lease,
        };
        let store = self.engine.store();
        let events = store.claim_events(&req).await?;
        let pushes = store.claim(Queue::Outbox, &req).await?;
        // One sync step (a listing page) per batch, beside the queues: a backfill never
        // holds back webhook processing by more than a page.
        let syncs = store
            .claim_sync(&ClaimRequest {
                limit: 1,
                ..req.clone()
            })
            .await?;
        let mut report = BatchReport {
            claimed: events.len() + pushes.len() + syncs.len(),
            ..BatchReport::default()
        };
        let concurrency = self.config.concurrency.max(1);
        let pushed = futures::stream::iter(pushes)
            .map(|job| self.handle(job, shutdown))
            .buffer_unordered(concurrency)
            .collect::<Vec<BatchReport>>();
        let synced = self.handle_syncs(syncs);
        let (processed, pushed, synced) =
            tokio::join!(self.handle_events(events, shutdown), pushed, synced);
        for r in pushed.into_iter().chain([processed, synced]) {
            report.add(r);
        }
        crate::metrics::batch(&report);
        Ok(report)
    }

    /// Runs claimed sync jobs' steps (each records its own failure on the job).
    async fn handle_syncs(&self, jobs: Vec<crate::store::SyncJob>) -> BatchReport {
        let mut report = BatchReport::default();
        for job in jobs {
            let integration = job.integration_id;
            match self.engine.run_sync(job).await {
                Ok(step) if step.error.is_none() => report.completed += 1,
                Ok(step) => {
                    tracing::info!(worker = %self.config.id, %integration, error = ?step.error, "sync step failed");
                    report.retried += 1;
                }
                Err(e) => {
                    tracing::warn!(worker = %self.config.id, %integration, error = %e, "sync step could not be recorded");
                    report.retried += 1;
                }
            }
        }
        report
    }

    /// Processes claimed inbox events as one batch per workspace
    /// ([`Engine::process_events`]) and settles each one's outcome.
    async fn handle_events(
        &self,
        events: Vec<InboxEvent>,
        shutdown: &CancellationToken,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        if events.is_empty() {
            return report;
        }
        if shutdown.is_cancelled() {
            for e in &events {
                if let Some(lease) = &e.lease {
                    self.release(lease).await;
                    report.released += 1;
                }
            }
            return report;
        }
        let results = self
            .engine
            .process_events(&events, self.config.concurrency)
            .await;
        for (event, result) in events.into_iter().zip(results) {
            report.add(self.settle(Job::Event(event), result).await);
        }
        report
    }

    /// Runs batches until both queues have nothing due (for tests and one-shot tools).
    pub async fn drain(&self) -> Result<BatchReport, StoreError> {
        let token = CancellationToken::new();
        let mut total = BatchReport::default();
        loop {
            let r = self.run_once(&token).await?;
            total.add(r);
            if r.claimed == 0 {
                return Ok(total);
            }
        }
    }

    async fn handle(&self, job: Job, shutdown: &CancellationToken) -> BatchReport {
        if shutdown.is_cancelled() {
            let mut report = BatchReport::default();
            if let Some(lease) = job.lease() {
                self.release(lease).await;
                report.released = 1;
            }
            return report;
        }
        let result = match &job {
            Job::Event(e) => self.engine.process_event(e).await,
            Job::Push(p) => self.engine.process_push(p).await,
        };
        self.settle(job, result).await
    }

    /// Gives a claimed row back unprocessed (its attempt does not count).
    async fn release(&self, lease: &Lease) {
        let now = Retry::Deferred(OffsetDateTime::now_utc());
        if let Err(e) = self
            .fail(
                lease,
                &JobFailure::new(FailureKind::Other, "released at shutdown"),
                now,
            )
            .await
        {
            tracing::warn!(worker = %self.config.id, row = %lease.row, error = %e, "could not release");
        }
    }

    /// Records a processed row's outcome: done, or failed with its retry.
    async fn settle(&self, job: Job, result: Result<(), Error>) -> BatchReport {
        let mut report = BatchReport::default();
        let Some(lease) = job.lease().cloned() else {
            return report;
        };
        let Err(err) = result else {
            report.completed = 1;
            return report;
        };
        let retry = self.retry_for(&job, &err).await;
        match retry {
            Retry::Never(_) => report.gave_up = 1,
            _ => report.retried = 1,
        }
        tracing::warn!(worker = %self.config.id, row = %lease.row, attempt = lease.attempt, error = %err, ?retry, "job failed");
        if let Err(e) = self.fail(&lease, &JobFailure::from(&err), retry).await {
            tracing::warn!(worker = %self.config.id, row = %lease.row, error = %e, "could not record failure");
        }
        report
    }

    async fn retry_for(&self, job: &Job, err: &Error) -> Retry {
        let cfg = self.engine.config();
        let now = OffsetDateTime::now_utc();
        let backoff = || {
            if job.attempts() >= cfg.max_attempts {
                Retry::Never(JobState::Dead)
            } else {
                Retry::At(now + cfg.backoff.delay(job.attempts()))
            }
        };
        match err {
            Error::Provider(ProviderError::RateLimited { until, reason }) => {
                // Every worker leaves this integration alone until then.
                tracing::info!(integration = %job.integration_id(), %until, %reason, "rate limited: pausing integration");
                crate::metrics::rate_limit_pause();
                if let Err(e) = self
                    .engine
                    .store()
                    .set_paused_until(job.integration_id(), Some(*until))
                    .await
                {
                    tracing::warn!(error = %e, "could not pause integration");
                }
                Retry::Deferred(*until)
            }
            // One object is busy (a per-issue limit): only this job waits.
            Error::Provider(ProviderError::ObjectBusy { until, .. }) => Retry::Deferred(*until),
            // One kind of call is held back (a burst limit): only this job waits; the
            // integration's other work goes on.
            Error::Provider(ProviderError::KindLimited { until, .. }) => Retry::Deferred(*until),
            Error::Provider(p) if p.is_retryable() => backoff(),
            Error::Store(s) if s.is_retryable() => backoff(),
            Error::Store(StoreError::LeaseLost(_)) => Retry::Never(JobState::Dead),
            // The store refuses this data (PostgreSQL cannot hold a NUL in JSON text, a value
            // breaks a constraint): the same input fails the same way every time.
            Error::Store(StoreError::Invalid(_)) => Retry::Never(JobState::Failed),
            Error::Provider(_)
            | Error::Invalid(_)
            | Error::Conflict(_)
            | Error::Secrets(_)
            | Error::UnknownProvider(_) => Retry::Never(JobState::Failed),
            _ => backoff(),
        }
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &JobFailure,
        retry: Retry,
    ) -> Result<(), StoreError> {
        self.engine.store().fail(lease, error, retry).await
    }
}
