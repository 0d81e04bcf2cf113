//! The application: store, engine, router, in-process workers, graceful shutdown (the state
//! handlers share is [`crate::state`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use hmac::{Hmac, KeyInit, Mac};
use ordonis_core::vera::CheckpointSigner;
use ordonis_core::{Engine, InvalidInput, Keyring, SecretKey, Store, Worker, WorkerConfig};
use ordonis_store_postgres::PostgresStore;
use ordonis_store_sqlite::SqliteStore;
use sha2::Sha256;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, Config, Origin, Resolved, resolve_secret};
use crate::errors::StartError;
use crate::metrics::Metrics;
pub use crate::state::{AppState, NewState, Shared};

/// Largest JSON body the admin API and the UI accept.
pub const API_BODY_LIMIT: usize = 64 * 1024;

/// The shortest admin token accepted (generated ones are 64 hex characters).
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// How long shutdown may take before in-flight work is abandoned (its lease expires and
/// another worker takes it).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Refuses an admin token shorter than [`MIN_ADMIN_TOKEN_LEN`] (before anything is opened).
fn check_admin_token(token: &Resolved) -> Result<(), InvalidInput> {
    if token.value.chars().count() < MIN_ADMIN_TOKEN_LEN {
        return Err(InvalidInput::new(
            "admin token (ORDONIS_ADMIN_TOKEN / --admin-token)",
            format!(
                "it must be at least {MIN_ADMIN_TOKEN_LEN} characters; unset it on SQLite to \
                 have a long one generated"
            ),
        ));
    }
    Ok(())
}

/// Refuses a metrics token shorter than [`MIN_ADMIN_TOKEN_LEN`].
fn check_metrics_token(token: Option<&str>) -> Result<(), InvalidInput> {
    match token {
        Some(t) if t.trim().chars().count() < MIN_ADMIN_TOKEN_LEN => Err(InvalidInput::new(
            "metrics token (ORDONIS_METRICS_TOKEN / --metrics-token)",
            format!("it must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
        )),
        _ => Ok(()),
    }
}

/// Opens the store a database URL names (migrating it). From here on the server speaks only
/// the `Store` contract, so any store works (the tests also run it on `MemoryStore`).
pub async fn open_store(backend: &Backend) -> Result<Arc<dyn Store>, StartError> {
    let failed = |what| move |source| StartError::Store { what, source };
    Ok(match backend {
        Backend::Postgres(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .map_err(failed("PostgreSQL"))?,
        ),
        Backend::Sqlite { url, .. } => {
            Arc::new(SqliteStore::connect(url).await.map_err(failed("SQLite"))?)
        }
    })
}

fn derive(key_hex: &str, label: &[u8]) -> Result<[u8; 32], StartError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key_hex.as_bytes())
        .map_err(|_| bad_secret_key())?;
    mac.update(label);
    Ok(mac.finalize().into_bytes().into())
}

/// Builds the engine over a store with the registered providers.
pub fn engine(
    store: Arc<dyn Store>,
    secret_key_hex: &str,
    retry: &crate::config::RetryArgs,
    public_url: Option<&str>,
    max_provider_response_bytes: usize,
    handshake_window: Duration,
    allow_http_links: bool,
) -> Result<Engine, StartError> {
    let key = SecretKey::from_hex(1, secret_key_hex).map_err(|_| bad_secret_key())?;
    let mut config = retry.engine_config()?;
    config.handshake_window = handshake_window;
    // Artifact links: https only, unless the server allows any provider URL (tests).
    config.allow_http_links = allow_http_links;
    // The webhooks the engine registers point at this server's webhook route
    // (`routes::integrations::webhook_url`).
    config.webhook_url = public_url
        .as_ref()
        .map(|u| format!("{u}/integrations/{{provider}}/{{id}}/webhook"));
    // A comment Ordonis posts links to its ledger entry's inclusion proof on this server.
    config.receipt_url =
        public_url.map(|u| format!("{u}/api/ledger/{{workspace}}/proof/{{index}}"));
    let mut b = Engine::builder(store, Keyring::new(key)).config(config);
    for p in crate::providers::registry(max_provider_response_bytes)? {
        b = b.provider(p);
    }
    Ok(b.build())
}

/// Checks the secret key against the store's key-check record, storing one sealed with this
/// key when the store has none yet (a new store, or one from before the record existed: then
/// the key must first open the stored integrations' secrets). A wrong key is refused here,
/// at start-up, rather than failing every job later.
pub async fn check_secret_key(store: &dyn Store, secret_key_hex: &str) -> Result<(), StartError> {
    let ring = Keyring::new(SecretKey::from_hex(1, secret_key_hex).map_err(|_| bad_secret_key())?);
    let wrong = |_| StartError::WrongSecretKey;
    let store_err = |source| StartError::Store {
        what: "checking the secret key",
        source,
    };
    let record = match store.key_check().await.map_err(store_err)? {
        Some(r) => r,
        None => {
            // A store from before the key-check record: its sealed secrets must open.
            for ws in store.workspaces().await.map_err(store_err)? {
                if let Some(r) = store.integrations(&ws).await.map_err(store_err)?.first() {
                    ring.open(r.id, &r.secrets).map_err(wrong)?;
                }
            }
            let sealed = ring
                .seal_key_check()
                .map_err(|_| StartError::WrongSecretKey)?;
            store.init_key_check(&sealed).await.map_err(store_err)?
        }
    };
    ring.check_key(&record).map_err(wrong)
}

fn bad_secret_key() -> StartError {
    InvalidInput::new(
        "secret key (ORDONIS_SECRET_KEY / --secret-key)",
        "it must be 64 hex characters",
    )
    .into()
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (for tests and the demo).
    pub state: AppState,
    /// Where the admin token came from.
    pub admin_token: Resolved,
    /// Where the secret key came from.
    pub secret_key_origin: Origin,
    shutdown: CancellationToken,
    http: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the store, binds, and starts serving and (with `workers > 0`) working.
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let backend = Backend::parse(&config.database_url)?;
        let admin_token = resolve_secret(
            config.admin_token.as_deref(),
            &backend,
            "admin-token",
            "ORDONIS_ADMIN_TOKEN",
        )?;
        check_admin_token(&admin_token)?;
        let secret_key = resolve_secret(
            config.secret_key.as_deref(),
            &backend,
            "secret-key",
            "ORDONIS_SECRET_KEY",
        )?;
        let store = open_store(&backend).await?;
        Self::serve(config, store, admin_token, secret_key).await
    }

    /// Starts on a store the caller opened, any [`Store`] (a host's own, or `MemoryStore` in
    /// tests): the server uses nothing but the `Store` contract. The admin token and the
    /// secret key must be given in `config` (there is no database file to keep them beside).
    pub async fn start_on(config: &Config, store: Arc<dyn Store>) -> Result<Self, StartError> {
        let given = |v: Option<&str>, what: &str| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| Resolved {
                    value: v.to_owned(),
                    origin: Origin::Given,
                })
                .ok_or_else(|| {
                    InvalidInput::new(what, "must be given to start on a caller's store")
                })
        };
        let admin_token = given(config.admin_token.as_deref(), "the admin token")?;
        check_admin_token(&admin_token)?;
        let secret_key = given(config.secret_key.as_deref(), "the secret key")?;
        Self::serve(config, store, admin_token, secret_key).await
    }

    async fn serve(
        config: &Config,
        store: Arc<dyn Store>,
        admin_token: Resolved,
        secret_key: Resolved,
    ) -> Result<Self, StartError> {
        check_metrics_token(config.metrics_token.as_deref())?;
        check_secret_key(store.as_ref(), &secret_key.value).await?;
        let metrics = Arc::new(Metrics::install());
        let signer = CheckpointSigner::from_seed(&derive(
            &secret_key.value,
            b"ordonis/vera/checkpoint-signer/v1",
        )?);
        let witnesses = config.witness_keys()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Io {
                what: format!("cannot listen on {}", config.listen),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Io {
            what: "the listening address".to_owned(),
            source,
        })?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_owned();
        let engine = engine(
            store.clone(),
            &secret_key.value,
            &config.retry,
            Some(&public_url),
            config.max_provider_response_bytes,
            config.handshake_window,
            config.allow_any_provider_url,
        )?;
        let state = AppState::new(NewState {
            engine: engine.clone(),
            store,
            signer,
            metrics: metrics.clone(),
            wake: Arc::new(Notify::new()),
            public_url,
            allow_any_provider_url: config.allow_any_provider_url,
            witnesses,
            vera_read_key: derive(&secret_key.value, b"ordonis/vera/read-token/v1")?,
            admin_token: &admin_token.value,
            metrics_token: config.metrics_token.as_deref().map(str::trim),
            session_ttl: Duration::from_secs(config.session_ttl_secs),
        });
        let shutdown = CancellationToken::new();
        let workers = spawn_workers(
            &engine,
            config.workers,
            WorkerConfig::default().lease,
            &state.wake,
            &shutdown,
        );
        let app = router(state.clone());
        let http = tokio::spawn(crate::http::serve(
            listener,
            app,
            config.limits(),
            shutdown.clone(),
        ));
        let secret_key_origin = secret_key.origin.clone();
        tracing::info!(
            %addr,
            database = %crate::config::redact_url(&config.database_url),
            workers = config.workers,
            "ordonis-server started"
        );
        Ok(Self {
            addr,
            state,
            admin_token,
            secret_key_origin,
            shutdown,
            http,
            workers,
        })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A token that, cancelled, starts shutdown.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops accepting, lets in-flight requests and jobs finish (claimed jobs not yet started
    /// are released), and returns within [`SHUTDOWN_GRACE`].
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let all = async {
            let _ = self.http.await;
            for w in self.workers {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!(
                "shutdown: in-flight work did not finish in time; its leases will expire"
            );
        }
    }

    /// Waits until the shutdown token is cancelled, then shuts down.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }
}

/// Starts `n` worker loops over an engine.
pub fn spawn_workers(
    engine: &Engine,
    n: usize,
    lease: Duration,
    wake: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let worker = Worker::new(
                engine.clone(),
                WorkerConfig {
                    id: format!("{}-{i}-{}", host_tag(), uuid::Uuid::now_v7().simple()),
                    idle_poll: Duration::from_millis(200),
                    lease,
                    ..WorkerConfig::default()
                },
            );
            let wake = wake.clone();
            let token = shutdown.clone();
            tokio::spawn(async move { work(worker, wake, token).await })
        })
        .collect()
}

fn host_tag() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "ordonis".to_owned())
}

async fn work(worker: Worker, wake: Arc<Notify>, token: CancellationToken) {
    while !token.is_cancelled() {
        match worker.run_once(&token).await {
            Ok(r) => {
                if r.claimed > 0 {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "worker: claim failed"),
        }
        tokio::select! {
            () = token.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// The whole HTTP surface, every response with the security headers
/// ([`crate::security::with_headers`]), UI posts checked for their `Origin`.
pub fn router(state: AppState) -> Router {
    let ui = crate::ui::router(state.clone())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::security::same_origin_posts,
        ));
    crate::security::with_headers(
        Router::new()
            .merge(crate::routes::public(state.clone()))
            .merge(crate::routes::api(state).layer(DefaultBodyLimit::max(API_BODY_LIMIT)))
            .merge(ui),
    )
}
