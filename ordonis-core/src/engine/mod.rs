//! The sync engine: ingest → process → push, over any [`Store`] and [`Provider`]s.

mod access;
mod comment_sync;
mod comments;
mod conflicts;
mod create;
mod inbound;
mod ingest;
mod integrations;
mod outbound;
mod pacing;
mod people;
mod repair;
mod retired_webhooks;
mod session_links;
mod sessions;
mod sweep;
mod tasks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

pub use access::AccessProblem;
pub use comments::CommentReceipt;
pub use conflicts::Resolution;
pub use create::CreateReceipt;
pub use ingest::{IngestOutcome, IngestResponse};
pub use integrations::IntegrationChange;
pub use people::{ATTRIBUTION_TTL, AccountView, PeopleView, PersonView, UnmatchedAccount};
pub use repair::{
    BackfillReport, ReconcileReport, SweepReport, SyncReport, SyncStep, WebhookReportView,
};
pub use sessions::{ActivityReceipt, MAX_ACTIVITY_ID, NewActivity, SessionActivity};
pub use tasks::ChangeReceipt;

use crate::config::{EngineConfig, IntegrationConfig};
use crate::error::{Error, InvalidInput, StoreError};
use crate::ids::{IntegrationId, WorkspaceId};
use crate::ledger::LedgerDraft;
use crate::model::ProviderKind;
use crate::provider::{Provider, ProviderContext};
use crate::secrets::{IntegrationSecrets, Keyring};
use crate::store::{IntegrationRecord, IntegrationState, IntegrationUpdate, Store, UnitOfWork};

/// The engine a host embeds: a store, the providers, the key that seals secrets.
///
/// The whole inbound flow, runnable: an integration is created, a provider's webhook is
/// handed to [`Engine::ingest`] (verified, stored, answered), a [`crate::Worker`] processes
/// it into a task, and a change made for a person by an agent is written with its ledger
/// entry and a queued push ([`Engine::change_task`]). Here over the in-memory store and the
/// testkit's in-process fake provider; a host passes `SqliteStore` or `PostgresStore` and
/// the Jira or Asana adapter instead.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ordonis_core::{
///     Actor, ActorKind, Engine, FieldPatch, FieldValue, IntegrationConfig, IntegrationSecrets,
///     Keyring, NewIntegration, Principal, ProviderKind, SecretKey, StoreExt, Worker,
///     WorkerConfig, WorkspaceId,
/// };
/// use ordonis_store_memory::MemoryStore;
/// use ordonis_testkit::fake::FakeProvider;
///
/// let store = Arc::new(MemoryStore::new());
/// let provider = Arc::new(FakeProvider::new("s3cret"));
/// let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
///     .provider(provider.clone())
///     .build();
/// let ws = WorkspaceId::new("acme")?;
/// let integration = engine
///     .create_integration(NewIntegration {
///         workspace_id: ws.clone(),
///         provider: ProviderKind::new("fake"),
///         config: IntegrationConfig::new("http://fake.invalid"),
///         secrets: IntegrationSecrets {
///             api_auth: None,
///             webhook_secrets: vec!["s3cret".into()],
///             app_secret: None,
///         },
///     })
///     .await?;
///
/// // Someone creates a task in the provider; its webhook reaches your route.
/// let title = FieldPatch::new().with(FieldValue::Title("Fix login".into()));
/// provider.remote_create("T-1", &title, "ann");
/// for d in provider.take_deliveries() {
///     let answer = engine.ingest(integration, &http::Method::POST, &d.headers, d.body).await;
///     assert_eq!(answer.status, 200);
/// }
///
/// // A worker processes the inbox: the task exists.
/// let worker = Worker::new(engine.clone(), WorkerConfig::default());
/// worker.run_once(&tokio_util::sync::CancellationToken::new()).await?;
/// let task = store.all_tasks(&ws).await?.remove(0);
/// assert_eq!(task.fields.title, "Fix login");
///
/// // An agent renames it for a person: one ledger entry, one push queued.
/// let agent = Actor::agent(
///     "agt_7",
///     vec![Principal { kind: ActorKind::Human, id: "usr_42".into(), grant: None, display_name: None }],
/// );
/// let rename = FieldPatch::new().with(FieldValue::Title("Fix the login page".into()));
/// let receipt = engine.change_task(&ws, task.id, &agent, &rename).await?;
/// assert_eq!(receipt.entries.len(), 1);
/// assert!(receipt.push_queued);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    providers: HashMap<ProviderKind, Arc<dyn Provider>>,
    keyring: Keyring,
    config: EngineConfig,
    /// Integrations as `ingest` last loaded them (see [`INGEST_CACHE_TTL`]).
    ingest_cache: Mutex<HashMap<IntegrationId, (Instant, Arc<Loaded>)>>,
    /// Accounts this process recorded in the people directory, as recorded (so a webhook's
    /// author is written once, not per event).
    seen_cache: Mutex<HashMap<(WorkspaceId, IntegrationId, String), crate::people::SeenAccount>>,
    /// Who is behind an account, as this process last read it (see
    /// [`people::ATTRIBUTION_TTL`]).
    attribution_cache: Mutex<AttributionCache>,
}

/// Accounts' principals (or none), with when they were read.
type AttributionCache =
    HashMap<(WorkspaceId, IntegrationId, String), (Instant, Option<crate::people::Person>)>;

/// How long `ingest` reuses a loaded integration (record read, secrets opened) before reading
/// it again: one store round trip less per webhook under load. Only acceptance can be stale:
/// a signature that fails, and a handshake, are always checked against a fresh read, so a
/// secret rotated in (or a handshake expected) by another process is seen at once; a secret
/// rotated out elsewhere is still accepted for at most this long (this process's own changes
/// evict the entry immediately).
pub const INGEST_CACHE_TTL: Duration = Duration::from_secs(1);

/// Builds an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    providers: HashMap<ProviderKind, Arc<dyn Provider>>,
    keyring: Keyring,
    config: EngineConfig,
}

impl EngineBuilder {
    /// Registers a provider adapter.
    pub fn provider(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.insert(provider.kind(), provider);
        self
    }

    /// Replaces the default settings.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// The engine.
    pub fn build(self) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                providers: self.providers,
                keyring: self.keyring,
                config: self.config,
                ingest_cache: Mutex::new(HashMap::new()),
                seen_cache: Mutex::new(HashMap::new()),
                attribution_cache: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// A new integration, as a host creates it.
#[derive(Clone, Debug)]
pub struct NewIntegration {
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Provider.
    pub provider: ProviderKind,
    /// Non-secret configuration.
    pub config: IntegrationConfig,
    /// Secrets (sealed before they reach the store).
    pub secrets: IntegrationSecrets,
}

/// An integration with its secrets opened, ready for provider calls.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub(crate) record: IntegrationRecord,
    pub(crate) config: IntegrationConfig,
    pub(crate) ctx: ProviderContext,
    pub(crate) provider: Arc<dyn Provider>,
}

impl Engine {
    /// Starts building an engine over a store, with the keyring that seals secrets.
    pub fn builder(store: Arc<dyn Store>, keyring: Keyring) -> EngineBuilder {
        EngineBuilder {
            store,
            providers: HashMap::new(),
            keyring,
            config: EngineConfig::default(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Creates an integration; its secrets are sealed before the store sees them. Its
    /// workspace id must pass [`WorkspaceId::check_new`]
    /// (the first integration of a workspace creates it).
    /// A provider with a webhook handshake and no webhook secret yet starts out expecting
    /// its handshake.
    pub async fn create_integration(
        &self,
        mut new: NewIntegration,
    ) -> Result<IntegrationId, Error> {
        let provider = self
            .inner
            .providers
            .get(&new.provider)
            .ok_or_else(|| Error::UnknownProvider(new.provider.to_string()))?;
        // The first integration of a workspace creates it: no look-alike ids.
        new.workspace_id.check_new()?;
        integrations::check_settings(&**provider, &new.config, &new.secrets)?;
        if provider.capabilities().webhook_handshake && new.secrets.webhook_secrets.is_empty() {
            new.config.arm_handshake(
                OffsetDateTime::now_utc(),
                self.inner.config.handshake_window,
            );
        } else {
            new.config.disarm_handshake();
        }
        let id = IntegrationId::new();
        let record = IntegrationRecord {
            id,
            workspace_id: new.workspace_id,
            provider: new.provider,
            config: serde_json::to_value(&new.config)
                .map_err(|e| InvalidInput::new("config", e.to_string()))?,
            secrets: self.inner.keyring.seal(id, &new.secrets)?,
            paused_until: None,
            state: IntegrationState::Active,
            created_at: OffsetDateTime::now_utc(),
        };
        self.inner.store.create_integration(&record).await?;
        self.schedule_initial_sync(id, &record.workspace_id, &new.config)
            .await?;
        Ok(id)
    }

    /// Adds a webhook secret as the newest valid one; the previous one stays valid during the
    /// overlap ([`EngineConfig::webhook_secret_overlap`]).
    pub async fn rotate_webhook_secret(
        &self,
        id: IntegrationId,
        secret: String,
    ) -> Result<(), Error> {
        let loaded = self.load(id).await?;
        let mut secrets = loaded.ctx.secrets.clone();
        secrets.rotate_webhook_secret(secret, self.inner.config.webhook_secret_overlap);
        self.save_integration(&loaded.record, &loaded.config, &secrets)
            .await
    }

    /// Marks an integration as creating its webhook: it accepts one handshake
    /// ([`IntegrationConfig::expecting_handshake`]) within the engine's
    /// [`handshake_window`](EngineConfig::handshake_window) from now.
    pub async fn expect_handshake(&self, id: IntegrationId) -> Result<(), Error> {
        let loaded = self.load(id).await?;
        if !loaded.provider.capabilities().webhook_handshake {
            return Err(InvalidInput::new(
                "handshake",
                format!("{} webhooks have no handshake", loaded.record.provider),
            )
            .into());
        }
        let mut config = loaded.config.clone();
        config.arm_handshake(
            OffsetDateTime::now_utc(),
            self.inner.config.handshake_window,
        );
        self.save_integration(&loaded.record, &config, &loaded.ctx.secrets)
            .await
    }

    pub(crate) async fn save_integration(
        &self,
        record: &IntegrationRecord,
        config: &IntegrationConfig,
        secrets: &IntegrationSecrets,
    ) -> Result<(), Error> {
        let sealed = self.inner.keyring.seal(record.id, secrets)?;
        let config =
            serde_json::to_value(config).map_err(|e| InvalidInput::new("config", e.to_string()))?;
        self.inner
            .store
            .update_integration(
                record.id,
                &IntegrationUpdate {
                    config: Some(config),
                    secrets: Some(sealed),
                    paused_until: None,
                    state: None,
                },
            )
            .await?;
        self.forget_loaded(record.id);
        Ok(())
    }

    /// The integration for `ingest`: from the cache when read less than
    /// [`INGEST_CACHE_TTL`] ago, else from the store (`fresh` forces the read). The second
    /// value says whether it came from the cache.
    pub(crate) async fn load_for_ingest(
        &self,
        id: IntegrationId,
        fresh: bool,
    ) -> Result<(Arc<Loaded>, bool), Error> {
        if !fresh
            && let Ok(cache) = self.inner.ingest_cache.lock()
            && let Some((at, loaded)) = cache.get(&id)
            && at.elapsed() < INGEST_CACHE_TTL
        {
            return Ok((loaded.clone(), true));
        }
        let loaded = Arc::new(self.load(id).await?);
        if let Ok(mut cache) = self.inner.ingest_cache.lock() {
            // Bounded: entries of integrations no longer sent to age out here.
            if cache.len() > 10_000 {
                cache.retain(|_, (at, _)| at.elapsed() < INGEST_CACHE_TTL);
            }
            cache.insert(id, (Instant::now(), loaded.clone()));
        }
        Ok((loaded, false))
    }

    fn forget_loaded(&self, id: IntegrationId) {
        if let Ok(mut cache) = self.inner.ingest_cache.lock() {
            cache.remove(&id);
        }
    }

    /// Loads an integration with its secrets opened.
    pub(crate) async fn load(&self, id: IntegrationId) -> Result<Loaded, Error> {
        let record = self
            .inner
            .store
            .integration(id)
            .await?
            .filter(|r| r.state != IntegrationState::Disabled)
            .ok_or_else(|| Error::NotFound(format!("integration {id}")))?;
        self.open(record)
    }

    /// An integration record (disabled ones too) with its secrets opened.
    pub(crate) fn open(&self, record: IntegrationRecord) -> Result<Loaded, Error> {
        let id = record.id;
        let config: IntegrationConfig = serde_json::from_value(record.config.clone())
            .map_err(|e| InvalidInput::new("integration config", e.to_string()))?;
        let provider = self
            .inner
            .providers
            .get(&record.provider)
            .cloned()
            .ok_or_else(|| Error::UnknownProvider(record.provider.to_string()))?;
        let secrets = self.inner.keyring.open(id, &record.secrets)?;
        let ctx = ProviderContext {
            integration_id: id,
            workspace_id: record.workspace_id.clone(),
            base_url: config.base_url.clone(),
            secrets,
            options: config.options.clone(),
            scope: config.scope.clone(),
        };
        Ok(Loaded {
            record,
            config,
            ctx,
            provider,
        })
    }

    /// Commits a unit of work recomputed by `build` until no concurrent writer interferes.
    /// `build` returns `None` when there is nothing to write.
    pub(crate) async fn commit_with_retry<F, Fut>(
        &self,
        mut build: F,
    ) -> Result<Vec<LedgerDraft>, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<UnitOfWork>, Error>>,
    {
        use backon::BackoffBuilder;
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(1))
            .with_max_delay(std::time::Duration::from_millis(50))
            .with_jitter()
            .with_max_times(self.inner.config.conflict_retries)
            .build();
        loop {
            let Some(uow) = build().await? else {
                return Ok(Vec::new());
            };
            let drafts = uow.ledger.clone();
            match self.inner.store.commit(uow).await {
                Ok(_) => return Ok(drafts),
                Err(StoreError::Conflict(msg)) => match delays.next() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return Err(StoreError::Conflict(msg).into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
    }
}
