//! Deletions and scope, repaired (#30), over FakeJira on HTTP and the memory store: the id
//! sweep tombstones an issue whose `issue_deleted` webhook was lost and takes one moved out
//! of the scope out of it, over ids spanning several pages; a scope change imports what
//! entered, takes out what left and replaces the dynamic webhook filtered on the old scope;
//! disabling deletes the registered webhooks, and a deletion that fails is retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ordonis_core::{
    Actor, ApiAuth, Backoff, CauseKind, Engine, EngineConfig, IntegrationChange, IntegrationConfig,
    IntegrationId, IntegrationSecrets, Keyring, Ledger, LedgerEntry, NewIntegration, Op,
    ProviderKind, SecretKey, Store, StoreExt, Task, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::jira::FakeJira;
use ordonis_jira::JiraProvider;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};

fn issue(id: u64, project: &str, n: u64) -> Value {
    json!({
        "id": id.to_string(), "key": format!("{project}-{n}"),
        "fields": {
            "summary": format!("{project} issue {n}"),
            "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null, "duedate": null,
            "project": {"id": if project == "HO" { "10000" } else { "10001" }, "key": project},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    })
}

struct Sweep {
    jira: FakeJira,
    store: Arc<MemoryStore>,
    engine: Engine,
    integration: IntegrationId,
    ws: WorkspaceId,
}

/// `ho` issues in project HO (ids 30000…) and `xx` in XX (ids 40000…); an integration over
/// `scope`, with ids swept 10 a page.
async fn sweep_site(ho: u64, xx: u64, scope: &str, dynamic: bool) -> Sweep {
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    for n in 0..ho {
        jira.insert_issue(issue(30_000 + n, "HO", n + 1));
    }
    for n in 0..xx {
        jira.insert_issue(issue(40_000 + n, "XX", n + 1));
    }
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(JiraProvider::new().unwrap()))
        .config(EngineConfig {
            backoff: Backoff {
                min: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            sweep_page_size: 10,
            webhook_url: Some("http://127.0.0.1:9/integrations/{provider}/{id}/webhook".into()),
            ..EngineConfig::default()
        })
        .build();
    let ws = WorkspaceId::new("ws-sweep").unwrap();
    let mut config = IntegrationConfig::new(jira.base_url());
    config.scope = json!({ "jql": scope });
    config.sync.reconcile_every_s = 1;
    config.sync.sweep_every_s = 1;
    if dynamic {
        config.options = json!({"webhook": "dynamic"});
        config.sync.register_webhook = true;
    }
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("jira"),
            config,
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Basic {
                    email: "bot@example.com".into(),
                    api_token: "tok".into(),
                }),
                webhook_secrets: vec!["s3cret".into()],
                app_secret: None,
            },
        })
        .await
        .unwrap();
    let s = Sweep {
        jira,
        store,
        engine,
        integration,
        ws,
    };
    s.drain().await;
    s
}

fn admin() -> Actor {
    Actor::service("admin-api")
}

impl Sweep {
    async fn drain(&self) {
        Worker::new(
            self.engine.clone(),
            WorkerConfig {
                id: "w".into(),
                lease: Duration::from_secs(30),
                idle_poll: Duration::from_millis(5),
                ..WorkerConfig::default()
            },
        )
        .drain()
        .await
        .unwrap();
    }

    /// A reconcile run now, and everything it stores processed.
    async fn reconcile(&self) {
        self.engine
            .reconcile_now(&self.ws, self.integration)
            .await
            .unwrap();
        self.drain().await;
    }

    async fn task(&self, issue_id: &str) -> Task {
        self.store
            .all_tasks(&self.ws)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.external.iter().any(|l| l.key.external_id == issue_id))
            .unwrap_or_else(|| panic!("no task for {issue_id}"))
    }

    async fn tasks(&self) -> Vec<Task> {
        self.store.all_tasks(&self.ws).await.unwrap()
    }

    async fn ledger(&self) -> Vec<LedgerEntry> {
        let n = self.store.ledger_size(&self.ws).await.unwrap();
        self.store
            .ledger_entries(&self.ws, 0, usize::try_from(n).unwrap())
            .await
            .unwrap()
    }

    async fn entries(&self, task: &Task, op: Op) -> Vec<LedgerEntry> {
        self.ledger()
            .await
            .into_iter()
            .filter(|e| e.record.task_id == task.id && e.record.op == op)
            .collect()
    }

    async fn change(&self, change: IntegrationChange) {
        self.engine
            .change_integration(self.integration, change, &admin())
            .await
            .unwrap();
    }

    fn live_webhooks(&self) -> Vec<i64> {
        self.jira
            .dynamic_webhooks()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }
}

/// Catches: no sweep (a deletion whose webhook was lost stays a live task forever, as does an
/// issue moved out of the scope); a sweep that reads only the first page of ids (17 more
/// issues would be fetched as "missing").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_sweep_tombstones_a_silent_deletion_and_takes_out_a_moved_issue() {
    let s = sweep_site(25, 0, "project = HO", false).await;
    assert_eq!(
        s.tasks().await.len(),
        25,
        "the backfill imported every issue"
    );
    // Deleted without a webhook, and moved to another project without one: no search in the
    // scope lists either any more.
    assert!(s.jira.delete_silently("30003"));
    s.jira.insert_issue(issue(30_017, "XX", 99));
    assert_eq!(s.jira.deliveries(), 0);
    // The sweep is due a second after the last one (the end of the backfill).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.reconcile().await;

    let gone = s.task("30003").await;
    assert!(gone.deleted, "tombstoned: {gone:?}");
    let deletions = s.entries(&gone, Op::Delete).await;
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert_eq!(deletions[0].record.cause.kind, CauseKind::Reconcile);
    assert!(deletions[0].record.rule.contains("tombstoned"));

    let moved = s.task("30017").await;
    assert!(moved.out_of_scope && !moved.deleted, "{moved:?}");
    let left = s.entries(&moved, Op::LeaveScope).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].record.rule.contains("project = HO"), "{left:?}");

    let live: Vec<Task> = s
        .tasks()
        .await
        .into_iter()
        .filter(|t| !t.deleted && !t.out_of_scope)
        .collect();
    assert_eq!(live.len(), 23);
    let report = s.engine.sync_report(s.integration).await.unwrap().unwrap();
    // Exactly the two: every page of ids was read (25 ids, 10 a page).
    assert_eq!(report.sweep.found, 2, "{report:?}");
    assert_eq!(report.sweep.error, None);
    let searches = s
        .jira
        .requests()
        .iter()
        .filter(|r| r.as_str() == "POST /rest/api/3/search/jql")
        .count();
    assert!(searches >= 3, "{searches} searches");

    // Back in the scope: the next sweep brings it back.
    s.jira.insert_issue(issue(30_017, "HO", 18));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.reconcile().await;
    let back = s.task("30017").await;
    assert!(!back.out_of_scope, "{back:?}");
    assert_eq!(s.entries(&back, Op::EnterScope).await.len(), 1);
}

/// Catches: a scope change that imports nothing new (no backfill), that leaves the tasks of
/// what left syncing, or that keeps the dynamic webhook filtered on the old scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_change_imports_what_entered_and_takes_out_what_left() {
    let s = sweep_site(3, 2, "project = HO", true).await;
    assert_eq!(s.tasks().await.len(), 3);
    s.reconcile().await;
    let first = s.live_webhooks();
    assert_eq!(first.len(), 1, "registered for the scope");

    // Widened: XX's issues are imported, and the webhook follows the new scope.
    s.change(IntegrationChange {
        scope: Some(json!({"jql": "project in (HO, XX)"})),
        ..IntegrationChange::default()
    })
    .await;
    s.drain().await;
    s.reconcile().await;
    assert_eq!(s.tasks().await.len(), 5);
    let xx = s.task("40001").await;
    assert_eq!(s.entries(&xx, Op::Create).await.len(), 1);
    let second = s.live_webhooks();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "the old scope's webhook was deleted");

    // Narrowed to XX: HO's tasks leave the scope (kept, not deleted), with a ledger entry.
    s.change(IntegrationChange {
        scope: Some(json!({"jql": "project = XX"})),
        ..IntegrationChange::default()
    })
    .await;
    s.drain().await;
    s.reconcile().await;
    for id in ["30000", "30001", "30002"] {
        let t = s.task(id).await;
        assert!(t.out_of_scope && !t.deleted, "{t:?}");
        assert_eq!(s.entries(&t, Op::LeaveScope).await.len(), 1);
    }
    assert!(!s.task("40000").await.out_of_scope);
    let third = s.live_webhooks();
    assert_eq!(third.len(), 1, "{third:?}");
    assert!(!third.contains(&second[0]));
    let configured: Vec<String> = s
        .ledger()
        .await
        .into_iter()
        .filter(|e| e.record.op == Op::Configure)
        .map(|e| e.record.rule)
        .collect();
    assert_eq!(configured.len(), 2, "{configured:?}");
    assert!(configured[1].contains("project = XX"), "{configured:?}");
}

/// Catches: disabling that leaves the registered webhook in Jira; a failed deletion that is
/// forgotten (the webhook would deliver to a disabled integration forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_deletes_the_registered_webhook_and_a_failed_deletion_is_retried() {
    let s = sweep_site(2, 0, "project = HO", true).await;
    s.reconcile().await;
    assert_eq!(s.live_webhooks().len(), 1);
    s.jira.fail_next_write(503, &[]);
    let rec = s
        .engine
        .disable_integration(s.integration, &admin())
        .await
        .unwrap();
    assert_eq!(rec.state, ordonis_core::IntegrationState::Disabled);
    assert_eq!(s.live_webhooks().len(), 1, "the deletion failed once");
    assert_eq!(
        rec.config["retired_webhooks"].as_array().map(Vec::len),
        Some(1)
    );
    // The workers' sweep retries it.
    assert_eq!(s.engine.delete_retired_webhooks().await.unwrap(), 1);
    assert!(s.live_webhooks().is_empty(), "deleted on the retry");
    let rec = s.store.integration(s.integration).await.unwrap().unwrap();
    assert_eq!(rec.config.get("retired_webhooks"), None);
    assert_eq!(s.engine.delete_retired_webhooks().await.unwrap(), 0);
}

/// Catches: a scope widened while a repair step is leased is never imported. The `PATCH`
/// cannot re-schedule a job a worker holds, so the run that ends under the new scope must
/// start the backfill of it itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_widened_during_a_running_step_is_backfilled() {
    let s = sweep_site(3, 0, "project = HO", true).await;
    assert_eq!(s.tasks().await.len(), 3);
    // XX's issues last changed long ago: only a backfill lists them, not a reconcile.
    for n in 0..2 {
        let mut i = issue(40_000 + n, "XX", n + 1);
        i["fields"]["updated"] = json!("2024-01-01T00:00:00.000+0000");
        s.jira.insert_issue(i);
    }
    // A worker is in a reconcile step when the scope is widened.
    s.engine.reconcile_now(&s.ws, s.integration).await.unwrap();
    let job = s
        .store
        .claim_sync(&ordonis_core::ClaimRequest {
            worker: "busy".into(),
            limit: 1,
            lease: Duration::from_secs(30),
        })
        .await
        .unwrap()
        .remove(0);
    s.change(IntegrationChange {
        scope: Some(json!({"jql": "project in (HO, XX)"})),
        ..IntegrationChange::default()
    })
    .await;
    s.engine.run_sync(job).await.unwrap();
    s.drain().await;
    assert_eq!(s.tasks().await.len(), 5, "XX's issues were not imported");
    let xx = s.task("40000").await;
    assert_eq!(s.entries(&xx, Op::Create).await.len(), 1);
}
