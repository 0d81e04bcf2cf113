//! Prometheus text metrics: inbox and outbox depth by state (read from the store), jobs
//! processed and failed, webhook outcomes, push latency, rate-limit pauses.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ordonis_core::StoreExt;
use ordonis_core::store::JobState;
use ordonis_core::{
    Capabilities, ChangeHint, FieldPatch, FieldValue, ListPage, ListRequest, ObjectKey, Provider,
    ProviderContext, ProviderError, ProviderKind, ProviderState, PushOutcome, RemoteTask, Store,
    WebhookAuth, WebhookCheck, WebhookReport, WebhookRequest, WebhookState,
};

const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Process-local counters (one set per server or worker process).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Rows completed by this process's workers.
    pub jobs_completed: AtomicU64,
    /// Rows that failed and will be retried.
    pub jobs_retried: AtomicU64,
    /// Rows that failed for good (dead or failed).
    pub jobs_gave_up: AtomicU64,
    /// Webhooks stored.
    pub webhooks_stored: AtomicU64,
    /// Webhooks that were duplicates.
    pub webhooks_duplicate: AtomicU64,
    /// Webhooks refused (signature, unknown integration, too large).
    pub webhooks_rejected: AtomicU64,
    /// Rate-limit answers from providers (each pauses the integration).
    pub rate_limit_pauses: AtomicU64,
    /// Push calls that failed.
    pub push_errors: AtomicU64,
    push_buckets: [AtomicU64; BUCKETS.len()],
    push_count: AtomicU64,
    push_sum_micros: AtomicU64,
}

impl Metrics {
    /// Records one worker batch.
    pub fn record_batch(&self, r: &ordonis_core::BatchReport) {
        self.jobs_completed
            .fetch_add(r.completed as u64, Ordering::Relaxed);
        self.jobs_retried
            .fetch_add(r.retried as u64, Ordering::Relaxed);
        self.jobs_gave_up
            .fetch_add(r.gave_up as u64, Ordering::Relaxed);
    }

    /// Records a push's duration.
    pub fn record_push(&self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.push_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.push_count.fetch_add(1, Ordering::Relaxed);
        self.push_sum_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The Prometheus text exposition, with queue depths read from the store.
    pub async fn render(&self, store: &dyn Store) -> Result<String, ordonis_core::StoreError> {
        let inbox = store.event_counts().await?;
        let outbox = store.push_counts().await?;
        let mut out = String::new();
        let states = [
            JobState::Pending,
            JobState::Processing,
            JobState::Done,
            JobState::Failed,
            JobState::Dead,
        ];
        for (name, help, counts) in [
            ("ordonis_inbox_rows", "Webhook inbox rows by state.", &inbox),
            (
                "ordonis_outbox_rows",
                "Outbox (push) rows by state.",
                &outbox,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for s in states {
                let n = counts
                    .iter()
                    .filter(|(st, _)| *st == s)
                    .map(|(_, n)| *n)
                    .sum::<u64>();
                let _ = writeln!(out, "{name}{{state=\"{}\"}} {n}", s.as_str());
            }
        }
        let counter = |out: &mut String, name: &str, help: &str, labels: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (l, v) in labels {
                if l.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{l}}} {v}");
                }
            }
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "ordonis_jobs_total",
            "Inbox and outbox rows handled by this process's workers, by result.",
            &[
                ("result=\"completed\"", get(&self.jobs_completed)),
                ("result=\"retried\"", get(&self.jobs_retried)),
                ("result=\"failed\"", get(&self.jobs_gave_up)),
            ],
        );
        counter(
            &mut out,
            "ordonis_webhooks_total",
            "Webhook deliveries received, by outcome.",
            &[
                ("outcome=\"stored\"", get(&self.webhooks_stored)),
                ("outcome=\"duplicate\"", get(&self.webhooks_duplicate)),
                ("outcome=\"rejected\"", get(&self.webhooks_rejected)),
            ],
        );
        counter(
            &mut out,
            "ordonis_rate_limit_pauses_total",
            "Provider rate-limit answers (each pauses the integration for every worker).",
            &[("", get(&self.rate_limit_pauses))],
        );
        counter(
            &mut out,
            "ordonis_push_errors_total",
            "Provider push calls that failed.",
            &[("", get(&self.push_errors))],
        );
        let name = "ordonis_push_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of provider push calls.\n# TYPE {name} histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                get(&self.push_buckets[i])
            );
        }
        let count = get(&self.push_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            get(&self.push_sum_micros) as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "{name}_count {count}");
        render_repair(&mut out, store).await?;
        Ok(out)
    }
}

/// A provider wrapped to time pushes and count rate limits.
#[derive(Debug)]
pub struct Instrumented {
    inner: Arc<dyn Provider>,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    /// Wraps a provider.
    pub fn new(inner: Arc<dyn Provider>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn note(&self, e: &ProviderError) {
        if e.rate_limited_until().is_some() {
            self.metrics
                .rate_limit_pauses
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl Provider for Instrumented {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn kept_headers(&self) -> &[&str] {
        self.inner.kept_headers()
    }

    fn check_options(&self, options: &serde_json::Value) -> Result<(), String> {
        self.inner.check_options(options)
    }

    fn accepts_auth(&self, auth: &ordonis_core::ApiAuth) -> bool {
        self.inner.accepts_auth(auth)
    }

    fn handshake_expected(&self, state: &ProviderState) -> bool {
        self.inner.handshake_expected(state)
    }

    fn set_handshake_expected(&self, state: &mut ProviderState, expected: bool) {
        self.inner.set_handshake_expected(state, expected);
    }

    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError> {
        self.inner.verify_webhook(ctx, req)
    }

    fn parse_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError> {
        self.inner.parse_webhook(ctx, req)
    }

    fn echo_form(&self, ctx: &ProviderContext, value: &FieldValue) -> Option<FieldValue> {
        self.inner.echo_form(ctx, value)
    }

    fn refuse_in_advance(&self, ctx: &ProviderContext, value: &FieldValue) -> Option<String> {
        self.inner.refuse_in_advance(ctx, value)
    }

    fn check_scope(&self, scope: &serde_json::Value) -> Result<(), String> {
        self.inner.check_scope(scope)
    }

    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError> {
        let r = self.inner.list_changes(ctx, req).await;
        if let Err(e) = &r {
            self.note(e);
        }
        r
    }

    async fn check_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        self.inner.check_webhooks(ctx, check).await
    }

    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        self.inner.register_webhooks(ctx, check).await
    }

    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError> {
        let r = self.inner.fetch_task(ctx, key).await;
        if let Err(e) = &r {
            self.note(e);
        }
        r
    }

    async fn planned_passes(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<Vec<FieldValue>, ProviderError> {
        let r = self.inner.planned_passes(ctx, key, patch).await;
        if let Err(e) = &r {
            self.note(e);
        }
        r
    }

    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        let start = std::time::Instant::now();
        let r = self.inner.push(ctx, key, patch).await;
        self.metrics.record_push(start.elapsed());
        if let Err(e) = &r {
            self.metrics.push_errors.fetch_add(1, Ordering::Relaxed);
            self.note(e);
        }
        r
    }
}

/// The repair loop's metrics, read from every integration's sync job.
async fn render_repair(
    out: &mut String,
    store: &dyn Store,
) -> Result<(), ordonis_core::StoreError> {
    let mut jobs = Vec::new();
    for ws in store.workspaces().await? {
        for rec in store.integrations(&ws).await? {
            if let Some(job) = store.sync_job(rec.id).await? {
                jobs.push(job);
            }
        }
    }
    let series = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    series(
        out,
        "ordonis_backfill_imported_total",
        "counter",
        "Objects the backfill stored in the inbox, per integration.",
    );
    for j in &jobs {
        let _ = writeln!(
            out,
            "ordonis_backfill_imported_total{{integration=\"{}\"}} {}",
            j.integration_id, j.status.backfill.imported
        );
    }
    series(
        out,
        "ordonis_reconcile_runs_total",
        "counter",
        "Reconcile runs finished, per integration and result.",
    );
    for j in &jobs {
        for (result, n) in [
            ("ok", j.status.reconcile.runs_ok),
            ("error", j.status.reconcile.runs_failed),
        ] {
            let _ = writeln!(
                out,
                "ordonis_reconcile_runs_total{{integration=\"{}\",result=\"{result}\"}} {n}",
                j.integration_id
            );
        }
    }
    series(
        out,
        "ordonis_reconcile_repaired_total",
        "counter",
        "Fields reconcile runs repaired (changes no webhook brought), per integration.",
    );
    for j in &jobs {
        let _ = writeln!(
            out,
            "ordonis_reconcile_repaired_total{{integration=\"{}\"}} {}",
            j.integration_id, j.repaired_total
        );
    }
    series(
        out,
        "ordonis_webhook_health",
        "gauge",
        "1 for the state each integration's webhooks are in, per integration and state.",
    );
    for j in &jobs {
        for state in WebhookState::ALL {
            let _ = writeln!(
                out,
                "ordonis_webhook_health{{integration=\"{}\",state=\"{}\"}} {}",
                j.integration_id,
                state.as_str(),
                u8::from(j.status.webhook.state == state)
            );
        }
    }
    Ok(())
}
