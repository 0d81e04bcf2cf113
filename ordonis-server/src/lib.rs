//! Ordonis reference server and worker.
//!
//! - [`app::Server`] runs the HTTP API, the UI and (by default) in-process workers on the
//!   embedded SQLite store or on PostgreSQL.
//! - [`routes`] is the HTTP contract (see the README): webhooks, the admin API, the VERA
//!   endpoints, `/healthz` and `/metrics`.
//! - [`ui`] is the server-rendered UI; `demo` (feature `demo`, on by default) the `--demo`
//!   mode on the fake providers of `ordonis-fakes`.
//!
//! Everything is in this library so tests start the app in-process on `127.0.0.1:0`.

pub mod app;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod errors;
pub mod http;
pub mod metrics;
pub mod providers;
pub mod routes;
pub mod security;
pub mod session;
pub mod state;
pub mod throttle;
pub mod ui;

pub use app::Server;
pub use state::AppState;

/// The workspace README's Rust blocks (the embedding example) compile as this crate's doc
/// tests, so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
pub use config::{Config, WorkerArgs};

/// Logs to stderr at `info` (or `ORDONIS_LOG=debug|warn|error|trace`), in colour only when
/// stderr is a terminal. Secrets are never logged: every type holding one redacts it in
/// `Debug`.
pub fn init_tracing() {
    let level = match std::env::var("ORDONIS_LOG").as_deref() {
        Ok("trace") => tracing::Level::TRACE,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    use std::io::IsTerminal as _;
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or log collectors.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// A future that resolves when SIGINT or SIGTERM arrives. SIGTERM's handler is installed
/// when this is called, not when the future is first polled: a SIGTERM sent as soon as the
/// process says it is ready stops it cleanly instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = term => {}
        }
    }
}
