//! What every handler shares ([`AppState`]): the engine, the store, the checkpoint signer,
//! the metrics, the admin token's digest and the UI sessions.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use ordonis_core::vera::{CheckpointSigner, WitnessKey};
use ordonis_core::{Engine, Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::session::Sessions;
use crate::throttle::{BEARER_FAILURE_BURST, FAILURE_PERIOD, SignInThrottle};

/// Everything handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

/// The shared parts.
pub struct Shared {
    /// The engine.
    pub engine: Engine,
    /// The store (also the ledger).
    pub store: Arc<dyn Store>,
    /// Signs VERA checkpoints (key derived from the secret key).
    pub signer: CheckpointSigner,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Wakes in-process workers when work arrives.
    pub wake: Arc<Notify>,
    /// Base URL for `webhook_url`s.
    pub public_url: String,
    /// Whether any provider `base_url` is accepted.
    pub allow_any_provider_url: bool,
    /// The witnesses whose checkpoint cosignatures are accepted (`--witness`).
    pub witnesses: Vec<WitnessKey>,
    vera_read_key: [u8; 32],
    token_digest: [u8; 32],
    metrics_token_digest: Option<[u8; 32]>,
    sessions: Sessions,
    sign_ins: SignInThrottle,
    bearer_failures: SignInThrottle,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What [`AppState::new`] is built from.
#[derive(Debug)]
pub struct NewState<'a> {
    /// The engine.
    pub engine: Engine,
    /// The store (also the ledger).
    pub store: Arc<dyn Store>,
    /// Signs VERA checkpoints.
    pub signer: CheckpointSigner,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Wakes in-process workers when work arrives.
    pub wake: Arc<Notify>,
    /// Base URL for `webhook_url`s.
    pub public_url: String,
    /// Whether any provider `base_url` is accepted.
    pub allow_any_provider_url: bool,
    /// The witnesses whose checkpoint cosignatures are accepted.
    pub witnesses: Vec<WitnessKey>,
    /// The key workspaces' read tokens are derived with (from the secret key).
    pub vera_read_key: [u8; 32],
    /// The admin token (only its digest is kept).
    pub admin_token: &'a str,
    /// The token that may read `/metrics` besides the admin token (only its digest is kept).
    pub metrics_token: Option<&'a str>,
    /// How long a UI sign-in lasts.
    pub session_ttl: std::time::Duration,
}

impl AppState {
    /// The state of a server.
    pub fn new(new: NewState<'_>) -> Self {
        Self {
            inner: Arc::new(Shared {
                engine: new.engine,
                store: new.store.clone(),
                signer: new.signer,
                metrics: new.metrics,
                wake: new.wake,
                public_url: new.public_url,
                allow_any_provider_url: new.allow_any_provider_url,
                witnesses: new.witnesses,
                vera_read_key: new.vera_read_key,
                token_digest: Sha256::digest(new.admin_token.as_bytes()).into(),
                metrics_token_digest: new
                    .metrics_token
                    .map(|t| Sha256::digest(t.as_bytes()).into()),
                sessions: Sessions::new(new.store.clone(), new.session_ttl),
                sign_ins: SignInThrottle::default(),
                bearer_failures: SignInThrottle::new(BEARER_FAILURE_BURST, FAILURE_PERIOD),
            }),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.inner
    }
}

impl Shared {
    /// Whether a presented admin token is the right one (constant time).
    pub fn token_ok(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(d.ct_eq(&self.token_digest))
    }

    /// Whether a presented token may read `/metrics`: the admin token or the metrics token
    /// (each compared in constant time).
    pub fn metrics_token_ok(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let metrics = self
            .metrics_token_digest
            .is_some_and(|m| bool::from(d.ct_eq(&m)));
        bool::from(d.ct_eq(&self.token_digest)) | metrics
    }

    /// The token that reads one workspace's entry bundles (`/vera/{ws}/tile/entries/…`):
    /// HMAC-SHA256 of the workspace id under the derived read key, hex. Derived, so nothing
    /// is stored; it changes only with the secret key.
    pub fn vera_read_token(&self, ws: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.vera_read_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"ordonis/vera/read-token/v1\n");
        mac.update(ws.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether a presented token is workspace `ws`'s read token (constant time).
    pub fn vera_read_ok(&self, ws: &str, presented: &str) -> bool {
        bool::from(
            self.vera_read_token(ws)
                .as_bytes()
                .ct_eq(presented.as_bytes()),
        )
    }

    /// Starts a UI session (after a right token); returns the cookie value: a fresh random
    /// id, never derived from the token.
    pub async fn new_session(&self) -> Result<String, StoreError> {
        self.sessions.create(self.token_digest).await
    }

    /// Whether a presented session cookie is a live session created under the current
    /// admin token (on any server of the deployment: sessions are in the store).
    pub async fn session_ok(&self, presented: &str) -> Result<bool, StoreError> {
        self.sessions.check(presented, &self.token_digest).await
    }

    /// Ends a UI session (sign-out): the cookie is refused from then on, by every server.
    pub async fn end_session(&self, presented: &str) -> Result<(), StoreError> {
        self.sessions.revoke(presented).await
    }

    /// The UI sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Failed UI sign-ins per client (per process: each server counts its own).
    pub fn sign_ins(&self) -> &SignInThrottle {
        &self.sign_ins
    }

    /// Wrong bearer tokens per client, on `/api` and `/metrics`.
    pub fn bearer_failures(&self) -> &SignInThrottle {
        &self.bearer_failures
    }
}
