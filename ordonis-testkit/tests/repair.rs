//! The repair loop at the engine level, over the memory store and the scripted fake: backfill
//! imports what exists without a single webhook, reconcile repairs lost deliveries within a
//! run and writes nothing the second time, and a rate limit pauses a run at its page.

use std::sync::Arc;
use std::time::Duration;

use ordonis_core::{
    BackfillState, Backoff, CauseKind, Engine, EngineConfig, FieldPatch, FieldValue,
    IntegrationConfig, IntegrationId, IntegrationSecrets, Keyring, Ledger, NewIntegration,
    ProviderError, ProviderKind, SecretKey, Store, StoreExt, WebhookState, Worker, WorkerConfig,
    WorkspaceId,
};
use ordonis_store_memory::MemoryStore;
use ordonis_testkit::FakeProvider;

struct Repair {
    store: Arc<MemoryStore>,
    fake: Arc<FakeProvider>,
    engine: Engine,
    integration: IntegrationId,
    ws: WorkspaceId,
}

async fn setup(seeded: usize, backfill: bool) -> Repair {
    let store = Arc::new(MemoryStore::new());
    let fake = Arc::new(FakeProvider::new("secret"));
    for i in 0..seeded {
        fake.seed(
            &format!("obj-{i:03}"),
            &FieldPatch::new().with(FieldValue::Title(format!("Existing {i}"))),
        );
    }
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(fake.clone())
        .config(EngineConfig {
            backoff: Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            ..EngineConfig::default()
        })
        .build();
    let ws = WorkspaceId::new(format!("repair-{}", uuid::Uuid::now_v7()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut config = IntegrationConfig::new("http://fake.invalid");
    config.scope = serde_json::json!({"all": true});
    config.sync.backfill = backfill;
    config.sync.reconcile_every_s = 1;
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("fake"),
            config,
            secrets: IntegrationSecrets {
                api_auth: None,
                webhook_secrets: vec!["secret".into()],
                app_secret: None,
            },
        })
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    Repair {
        store,
        fake,
        engine,
        integration,
        ws,
    }
}

impl Repair {
    async fn drain(&self) {
        let w = Worker::new(
            self.engine.clone(),
            WorkerConfig {
                id: "w".into(),
                lease: Duration::from_secs(30),
                ..WorkerConfig::default()
            },
        );
        w.drain().await.unwrap_or_else(|e| panic!("drain: {e}"));
    }

    async fn titles(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .store
            .all_tasks(&self.ws)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|t| t.fields.title)
            .collect();
        t.sort();
        t
    }

    async fn ledger(&self) -> Vec<ordonis_core::LedgerEntry> {
        let n = self
            .store
            .ledger_size(&self.ws)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.store
            .ledger_entries(&self.ws, 0, usize::try_from(n).unwrap_or(usize::MAX))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn report(&self) -> ordonis_core::SyncReport {
        self.engine
            .sync_report(self.integration)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("no sync report"))
    }

    async fn reconcile(&self) {
        self.engine
            .reconcile_now(&self.ws, self.integration)
            .await
            .unwrap_or_else(|e| panic!("reconcile_now: {e}"));
        self.drain().await;
    }
}

#[tokio::test]
async fn backfill_imports_every_object_without_a_webhook() {
    let r = setup(250, true).await;
    r.drain().await;
    assert!(r.fake.take_deliveries().is_empty(), "no webhook was sent");
    let titles = r.titles().await;
    assert_eq!(titles.len(), 250);
    assert_eq!(titles[0], "Existing 0");
    let report = r.report().await;
    assert_eq!(report.backfill.state, BackfillState::Done);
    assert_eq!(report.backfill.imported, 250);
    assert!(report.reconcile.next_run_at.is_some());
    let entries = r.ledger().await;
    assert!(
        entries
            .iter()
            .all(|e| e.record.cause.kind == CauseKind::Backfill),
        "every entry names the backfill"
    );
    // A reconcile over the same data stores and writes nothing.
    let events_before = r
        .store
        .events(&r.ws, &Default::default())
        .await
        .map(|e| e.len());
    r.reconcile().await;
    assert_eq!(r.ledger().await.len(), entries.len());
    assert_eq!(
        r.store
            .events(&r.ws, &Default::default())
            .await
            .map(|e| e.len()),
        events_before
    );
}

#[tokio::test]
async fn reconcile_repairs_a_lost_delivery_and_names_itself() {
    let r = setup(3, true).await;
    r.drain().await;
    let before = r.ledger().await.len();
    r.fake
        .remote_edit_silently("obj-001", FieldValue::Title("Edited, webhook lost".into()));
    r.reconcile().await;
    assert!(
        r.titles()
            .await
            .contains(&"Edited, webhook lost".to_owned())
    );
    let entries = r.ledger().await;
    let repair: Vec<_> = entries[before..].iter().collect();
    assert_eq!(repair.len(), 1, "{repair:?}");
    assert_eq!(repair[0].record.cause.kind, CauseKind::Reconcile);
    let report = r.report().await;
    assert_eq!(report.reconcile.repaired, 1);
    assert!(report.reconcile.last_ok_at.is_some());
    // The next run reports the lost delivery as a webhook-health warning.
    r.reconcile().await;
    let report = r.report().await;
    assert_eq!(report.reconcile.repaired, 0, "nothing left to repair");
    assert_eq!(report.webhook.state, WebhookState::Failing);
    assert_eq!(
        report.webhook.detail.as_deref(),
        Some("1 changes arrived only by reconcile in the last hour")
    );
}

#[tokio::test]
async fn without_backfill_nothing_old_is_imported() {
    let r = setup(5, false).await;
    r.drain().await;
    assert!(r.titles().await.is_empty());
    r.fake
        .remote_edit_silently("obj-002", FieldValue::Title("Changed after connect".into()));
    r.reconcile().await;
    assert_eq!(r.titles().await, vec!["Changed after connect".to_owned()]);
}

#[tokio::test]
async fn a_rate_limited_page_pauses_the_integration_and_resumes() {
    let r = setup(250, true).await;
    // The second page is refused for 1 s.
    let w = Worker::new(r.engine.clone(), WorkerConfig::default());
    let token = tokio_util::sync::CancellationToken::new();
    w.run_once(&token).await.unwrap_or_else(|e| panic!("{e}"));
    r.fake.inject(|f| {
        f.next_calls.push_back(ProviderError::rate_limited_for(
            Duration::from_secs(1),
            "retry-after",
        ));
    });
    r.drain().await;
    let rec = r
        .store
        .integration(r.integration)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("gone"));
    assert!(rec.paused_until.is_some(), "paused by the rate limit");
    let job = r
        .store
        .sync_job(r.integration)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no job"));
    assert_eq!(job.status.backfill.state, BackfillState::Running);
    assert!(job.cursor.is_some(), "the run keeps its page");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    r.drain().await;
    assert_eq!(r.titles().await.len(), 250);
}
