//! Shared setup for engine-level tests: a `MemoryStore`, a `FakeProvider`, an engine with one
//! integration, and helpers to deliver webhooks and run workers until everything settles.

use std::sync::Arc;
use std::time::Duration;

use ordonis_core::{
    Backoff, Engine, EngineConfig, FieldPolicy, FieldRule, IntegrationConfig, IntegrationId,
    IntegrationSecrets, JobState, Keyring, NewIntegration, ProviderKind, SecretKey, Store, Worker,
    WorkerConfig, WorkspaceId,
};
use ordonis_store_memory::MemoryStore;

use crate::fake::{Delivery, FakeProvider, scramble};

/// The webhook secret the fake signs with.
pub const SECRET: &str = "fake-webhook-secret";

/// One engine over a memory store and a fake provider, with one integration.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The store.
    pub store: Arc<MemoryStore>,
    /// The fake provider.
    pub fake: Arc<FakeProvider>,
    /// The engine.
    pub engine: Engine,
    /// The integration.
    pub integration: IntegrationId,
    /// Its workspace.
    pub workspace: WorkspaceId,
}

impl Setup {
    /// A setup with a field policy and the default fake.
    pub async fn new(policy: &FieldPolicy) -> Self {
        Self::with_fake(policy, FakeProvider::new(SECRET)).await
    }

    /// A setup with a given fake.
    pub async fn with_fake(policy: &FieldPolicy, fake: FakeProvider) -> Self {
        let store = Arc::new(MemoryStore::new());
        let fake = Arc::new(fake);
        let (engine, integration, workspace) =
            engine_with_integration(store.clone(), policy, fake.clone()).await;
        Self {
            store,
            fake,
            engine,
            integration,
            workspace,
        }
    }

    /// Sends deliveries through `ingest`, asserting each is accepted.
    pub async fn deliver(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            let resp = self
                .engine
                .ingest(self.integration, &http::Method::POST, &d.headers, d.body)
                .await;
            assert_eq!(resp.status, 200, "ingest answered {resp:?}");
        }
    }

    /// A worker.
    pub fn worker(&self, n: usize) -> Worker {
        Worker::new(
            self.engine.clone(),
            WorkerConfig {
                id: format!("w{n}"),
                batch_size: 8,
                concurrency: 4,
                lease: Duration::from_secs(30),
                idle_poll: Duration::from_millis(5),
            },
        )
    }

    /// Delivers the fake's webhooks (each 1..=`max_copies` times, shuffled) and runs
    /// `workers` concurrent workers until no webhook, event or push is outstanding.
    pub async fn settle(&self, workers: usize, max_copies: usize, rng: &mut impl rand::Rng) {
        for _ in 0..500 {
            let pending = self.fake.take_deliveries();
            let had = !pending.is_empty();
            self.deliver(scramble(pending, max_copies, 0.0, rng)).await;
            let mut handles = Vec::new();
            for n in 0..workers {
                let w = self.worker(n);
                handles.push(tokio::spawn(async move { w.drain().await }));
            }
            let mut claimed = 0;
            for h in handles {
                claimed += h
                    .await
                    .unwrap_or_else(|e| panic!("worker panicked: {e}"))
                    .unwrap_or_else(|e| panic!("worker failed: {e}"))
                    .claimed;
            }
            if !had && claimed == 0 && self.outstanding().await == 0 {
                return;
            }
            if claimed == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        panic!("did not settle");
    }

    /// Inbox and outbox rows still pending or in flight.
    pub async fn outstanding(&self) -> u64 {
        use ordonis_core::store::StoreExt;
        let mut n = 0;
        for (s, c) in self.store.event_counts().await.unwrap_or_default() {
            if matches!(s, JobState::Pending | JobState::Processing) {
                n += c;
            }
        }
        for (s, c) in self.store.push_counts().await.unwrap_or_default() {
            if matches!(s, JobState::Pending | JobState::Processing) {
                n += c;
            }
        }
        n
    }
}

/// An engine over any store with the fake provider, fast retries, and one integration whose
/// field policy is `policy` (in a fresh workspace): the setup of [`Setup`] for SQL stores.
pub async fn engine_with_integration(
    store: Arc<dyn Store>,
    policy: &FieldPolicy,
    fake: Arc<FakeProvider>,
) -> (Engine, IntegrationId, WorkspaceId) {
    let engine = Engine::builder(store, Keyring::new(SecretKey::generate(1)))
        .provider(fake)
        .config(EngineConfig {
            max_attempts: 4,
            backoff: Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(20),
            },
            ..EngineConfig::default()
        })
        .build();
    let workspace =
        WorkspaceId::new(format!("ws-{}", uuid::Uuid::now_v7())).unwrap_or_else(|_| unreachable!());
    let mut config = IntegrationConfig::new("http://fake.invalid");
    for f in ordonis_core::Field::ALL {
        let FieldRule { owner, direction } = policy.rule(f);
        config
            .field_policy
            .insert(f, FieldRule { owner, direction });
    }
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: workspace.clone(),
            provider: ProviderKind::new("fake"),
            config,
            secrets: IntegrationSecrets {
                api_auth: None,
                webhook_secrets: vec![SECRET.to_owned()],
                app_secret: None,
            },
        })
        .await
        .unwrap_or_else(|e| panic!("create_integration: {e}"));
    (engine, integration, workspace)
}
