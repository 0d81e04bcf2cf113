//! `/metrics` in the Prometheus text format: the core's counters and push histogram, which
//! the engine and workers record through the `metrics` facade and `metrics-exporter-prometheus`
//! exports, and, read from the store at each scrape, the queue depths and the repair loop's
//! totals (they live in the database, shared by every process).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use ordonis_core::store::JobState;
use ordonis_core::{Store, StoreExt, WebhookState};

/// The process's exporter: installed as the global `metrics` recorder once per process (a
/// server and its in-process workers share it, as they share the counters).
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

static INSTALLED: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

impl Metrics {
    /// Installs the Prometheus recorder as the process's `metrics` recorder, the first time;
    /// later calls share it. When the embedding process installed another recorder first,
    /// the core's counters go there and `/metrics` serves only the store's series.
    pub fn install() -> Self {
        let handle = INSTALLED.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(ordonis_core::metrics::PUSH_DURATION.to_owned()),
                    &ordonis_core::metrics::PUSH_DURATION_BUCKETS,
                )
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    ordonis_core::metrics::describe();
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics serves the store's series only");
                    None
                }
            }
        });
        Self {
            handle: handle.clone(),
        }
    }

    /// The Prometheus text exposition: the process's counters, then the series read from
    /// the store.
    pub async fn render(&self, store: &dyn Store) -> Result<String, ordonis_core::StoreError> {
        let mut out = self
            .handle
            .as_ref()
            .map(PrometheusHandle::render)
            .unwrap_or_default();
        out.push_str(&render_store(store).await?);
        Ok(out)
    }
}

/// The store's series, rendered by a recorder of their own (never installed): each scrape
/// sets them afresh from the database, whichever process answers it.
async fn render_store(store: &dyn Store) -> Result<String, ordonis_core::StoreError> {
    let inbox = store.event_counts().await?;
    let outbox = store.push_counts().await?;
    let mut jobs = Vec::new();
    for ws in store.workspaces().await? {
        for rec in store.integrations(&ws).await? {
            if let Some(job) = store.sync_job(rec.id).await? {
                jobs.push(job);
            }
        }
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_gauge!("ordonis_inbox_rows", "Webhook inbox rows by state.");
        metrics::describe_gauge!("ordonis_outbox_rows", "Outbox (push) rows by state.");
        let states = [
            JobState::Pending,
            JobState::Processing,
            JobState::Done,
            JobState::Failed,
            JobState::Dead,
        ];
        for (name, counts) in [
            ("ordonis_inbox_rows", &inbox),
            ("ordonis_outbox_rows", &outbox),
        ] {
            for s in states {
                let n: u64 = counts
                    .iter()
                    .filter(|(st, _)| *st == s)
                    .map(|(_, n)| *n)
                    .sum();
                metrics::gauge!(name, "state" => s.as_str()).set(n as f64);
            }
        }
        metrics::describe_counter!(
            "ordonis_backfill_imported_total",
            "Objects the backfill stored in the inbox, per integration."
        );
        metrics::describe_counter!(
            "ordonis_reconcile_runs_total",
            "Reconcile runs finished, per integration and result."
        );
        metrics::describe_counter!(
            "ordonis_reconcile_repaired_total",
            "Fields reconcile runs repaired (changes no webhook brought), per integration."
        );
        metrics::describe_gauge!(
            "ordonis_webhook_health",
            "1 for the state each integration's webhooks are in, per integration and state."
        );
        for j in &jobs {
            let id = j.integration_id.to_string();
            metrics::counter!("ordonis_backfill_imported_total", "integration" => id.clone())
                .absolute(j.status.backfill.imported);
            for (result, n) in [
                ("ok", j.status.reconcile.runs_ok),
                ("error", j.status.reconcile.runs_failed),
            ] {
                metrics::counter!("ordonis_reconcile_runs_total", "integration" => id.clone(), "result" => result)
                    .absolute(n);
            }
            metrics::counter!("ordonis_reconcile_repaired_total", "integration" => id.clone())
                .absolute(j.repaired_total);
            for state in WebhookState::ALL {
                metrics::gauge!("ordonis_webhook_health", "integration" => id.clone(), "state" => state.as_str())
                    .set(f64::from(u8::from(j.status.webhook.state == state)));
            }
        }
    });
    Ok(handle.render())
}
