//! What the engine and its workers count, recorded through the [`metrics`] facade, so every
//! host gets them: install any `metrics` exporter (the reference server installs
//! `metrics-exporter-prometheus` and serves `/metrics`), call [`describe`] once, and these
//! series appear. Without an exporter each record is a no-op.
//!
//! The counters are per process: each server or worker process counts what it handled.
//! Queue depths and the repair loop's totals live in the store; a host reads them there
//! (`Store::event_counts`, `Store::sync_job`) when it is scraped.

use std::time::Duration;

use crate::engine::IngestOutcome;
use crate::worker::BatchReport;

/// Counter: inbox and outbox rows handled by this process's workers, by `result`
/// (`completed`, `retried`, `failed`).
pub const JOBS: &str = "ordonis_jobs_total";
/// Counter: webhook deliveries received, by `outcome` (`stored`, `duplicate`, `rejected`).
pub const WEBHOOKS: &str = "ordonis_webhooks_total";
/// Counter: provider rate-limit answers, each of which pauses the integration.
pub const RATE_LIMIT_PAUSES: &str = "ordonis_rate_limit_pauses_total";
/// Counter: provider push calls that failed.
pub const PUSH_ERRORS: &str = "ordonis_push_errors_total";
/// Histogram: duration of provider push calls, in seconds.
pub const PUSH_DURATION: &str = "ordonis_push_duration_seconds";
/// The buckets [`PUSH_DURATION`] is meant to be exported with, in seconds.
pub const PUSH_DURATION_BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Registers the help text of every series with the installed recorder, and sets each
/// counter to zero, so a scrape lists them before anything happened. Call once, after
/// installing the recorder.
pub fn describe() {
    metrics::describe_counter!(
        JOBS,
        "Inbox and outbox rows handled by this process's workers, by result."
    );
    metrics::describe_counter!(WEBHOOKS, "Webhook deliveries received, by outcome.");
    metrics::describe_counter!(
        RATE_LIMIT_PAUSES,
        "Provider rate-limit answers (each pauses the integration for every worker)."
    );
    metrics::describe_counter!(PUSH_ERRORS, "Provider push calls that failed.");
    metrics::describe_histogram!(
        PUSH_DURATION,
        metrics::Unit::Seconds,
        "Duration of provider push calls."
    );
    for result in ["completed", "retried", "failed"] {
        metrics::counter!(JOBS, "result" => result).increment(0);
    }
    for outcome in ["stored", "duplicate", "rejected"] {
        metrics::counter!(WEBHOOKS, "outcome" => outcome).increment(0);
    }
    metrics::counter!(RATE_LIMIT_PAUSES).increment(0);
    metrics::counter!(PUSH_ERRORS).increment(0);
}

/// Counts one worker batch.
pub(crate) fn batch(r: &BatchReport) {
    for (result, n) in [
        ("completed", r.completed),
        ("retried", r.retried),
        ("failed", r.gave_up),
    ] {
        if n > 0 {
            metrics::counter!(JOBS, "result" => result).increment(n as u64);
        }
    }
}

/// Counts one webhook delivery by its outcome. The engine counts every delivery it is
/// handed; a host that refuses one before handing it over (a body over its limit, a path
/// that names no integration) counts it with this too.
pub fn webhook(outcome: &IngestOutcome) {
    let label = match outcome {
        IngestOutcome::Stored(_) => "stored",
        IngestOutcome::Duplicate(_) => "duplicate",
        IngestOutcome::Rejected(_)
        | IngestOutcome::UnknownIntegration
        | IngestOutcome::TooLarge => "rejected",
        IngestOutcome::Handshake | IngestOutcome::Heartbeat | IngestOutcome::Unavailable(_) => {
            return;
        }
    };
    metrics::counter!(WEBHOOKS, "outcome" => label).increment(1);
}

/// Counts a rate-limit answer that paused an integration.
pub(crate) fn rate_limit_pause() {
    metrics::counter!(RATE_LIMIT_PAUSES).increment(1);
}

/// Records one provider push call.
pub(crate) fn push(took: Duration, failed: bool) {
    metrics::histogram!(PUSH_DURATION).record(took.as_secs_f64());
    if failed {
        metrics::counter!(PUSH_ERRORS).increment(1);
    }
}
