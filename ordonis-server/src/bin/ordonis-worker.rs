//! `ordonis-worker`: workers only, for running many of them against one PostgreSQL.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use ordonis_server::app::{SHUTDOWN_GRACE, check_secret_key, engine, open_store, spawn_workers};
use ordonis_server::config::{Backend, existing_secret};
use ordonis_server::{WorkerArgs, init_tracing, shutdown_signal};
use tokio_util::sync::CancellationToken;

/// mimalloc, a pooled allocator: under load glibc's malloc/free took about a quarter of the
/// server's CPU samples (BENCHMARKS.md). Off with `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let args = WorkerArgs::parse();
    let backend = match Backend::parse(&args.database_url) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ordonis-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A worker must use the server's key: never a fresh one.
    let key = match existing_secret(
        args.secret_key.as_deref(),
        &backend,
        "secret-key",
        "ORDONIS_SECRET_KEY",
    ) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ordonis-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match open_store(&backend).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ordonis-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = check_secret_key(store.as_ref(), &key.value).await {
        eprintln!("ordonis-worker: {e}");
        return ExitCode::FAILURE;
    }
    // The core's counters go to the process's recorder (this worker serves no /metrics; a
    // host that scrapes workers installs an exporter of its own).
    let engine = match engine(
        store,
        &key.value,
        &args.retry,
        args.public_url.as_deref().map(|u| u.trim_end_matches('/')),
        args.max_provider_response_bytes,
        args.handshake_window,
        // A worker adds no artifacts (the API does): its engine checks no artifact URL.
        false,
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ordonis-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let token = CancellationToken::new();
    let wake = Arc::new(tokio::sync::Notify::new());
    let handles = spawn_workers(&engine, args.workers.max(1), args.lease, &wake, &token);
    let stop = shutdown_signal();
    tracing::info!(workers = handles.len(), "ordonis-worker running");
    stop.await;
    tracing::info!("shutting down");
    token.cancel();
    let all = async {
        for h in handles {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!("in-flight work did not finish in time; its leases will expire");
    }
    ExitCode::SUCCESS
}
