//! Serving HTTP/1.1 connections with limits on slow and idle clients.
//!
//! `axum::serve` has no timeouts: a connection that sends nothing, or trickles a body, is
//! held forever. Here each accepted connection is served by hyper's HTTP/1 connection
//! builder with a header-read timeout (which hyper arms whenever it waits for a request
//! head, so it also closes idle keep-alive connections), the router is wrapped in a
//! whole-request timeout (which bounds reading the body: a trickled body gets 408 and the
//! connection is closed), and a semaphore caps the connections served at once (beyond it,
//! connections wait in the listen backlog). One client address may hold at most
//! [`Limits::max_connections_per_client`] of them: a connection beyond that is closed at
//! once, so that one address cannot take every connection and keep others waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::add_extension::AddExtension;
use tower_http::timeout::TimeoutLayer;

use crate::throttle::ClientKey;

/// Connections held per client address.
struct PerClient {
    max: usize,
    held: Mutex<HashMap<ClientKey, usize>>,
}

/// One connection's place in its client's share; released when dropped.
struct Slot {
    owner: Arc<PerClient>,
    client: ClientKey,
}

impl PerClient {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for one more connection of `client`, or `None` when it holds its share.
    fn take(self: &Arc<Self>, client: ClientKey) -> Option<Slot> {
        let mut held = self.held();
        let n = held.entry(client).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.owner.held();
        if let Some(n) = held.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// Limits on connections (see [`crate::Config`] for the flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time a client has to send a whole request head, counted from when the server waits
    /// for it: after accepting the connection or after the previous response (so it is also
    /// the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Time from a request head to its response, reading the body included (408 after).
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once; more are closed as
    /// soon as they are accepted.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_client: 128,
        }
    }
}

/// Accepts and serves connections until `shutdown` is cancelled, then stops accepting,
/// lets in-flight requests finish (idle connections are closed) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let app = app.layer(TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = Arc::new(PerClient::new(limits.max_connections_per_client));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_client.take(ClientKey::of(peer.ip())) else {
            // Over its share: closed now (its permit is released with it), logged quietly.
            tracing::debug!(%peer, "connection closed: the client holds its share already");
            drop(stream);
            continue;
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        // Each request carries its peer address (ConnectInfo), which the sign-in throttle
        // keys on.
        let svc = AddExtension::new(app.clone(), ConnectInfo(peer));
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
