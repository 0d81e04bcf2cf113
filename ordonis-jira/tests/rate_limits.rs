//! Jira's 2026 rate limits end to end, over FakeJira on HTTP and the engine with its
//! workers: a burst limit holds back one kind of call only, the points quota's exhaustion
//! pauses the integration until `Beta-Retry-After`, a budget near its limit slows the
//! backfill while webhooks are processed, and dynamic webhooks arrive signed with the JWT a
//! Connect app receives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::{
    ApiAuth, Backoff, Engine, EngineConfig, FieldPatch, FieldValue, IntegrationConfig,
    IntegrationId, IntegrationSecrets, Keyring, NewIntegration, ProviderKind, SecretKey, Store,
    StoreExt, WebhookCheck, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::jira::{FakeJira, sign};
use ordonis_jira::JiraProvider;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

const SECRET: &str = "rate-limit-secret";

fn issue(id: u64) -> Value {
    json!({
        "id": id.to_string(), "key": format!("KAN-{id}"),
        "fields": {
            "summary": format!("Issue {id}"),
            "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null, "duedate": null,
            "project": {"id": "10000", "key": "KAN"},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    })
}

fn worker(engine: &Engine) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerConfig {
            id: "w".into(),
            batch_size: 8,
            concurrency: 1,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(5),
        },
    )
}

/// An engine over the memory store with one Jira integration on `jira` (scope `project =
/// KAN`), its webhooks captured for the test to hand over.
async fn engine_on(
    jira: &FakeJira,
    config: EngineConfig,
    backfill: bool,
) -> (Engine, Arc<MemoryStore>, IntegrationId) {
    jira.capture_webhooks();
    let store = Arc::new(MemoryStore::new());
    let provider = JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::from_millis(1));
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(provider))
        .config(EngineConfig {
            backoff: Backoff {
                min: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            ..config
        })
        .build();
    let mut c = IntegrationConfig::new(jira.base_url());
    c.scope = json!({"jql": "project = KAN"});
    c.sync.backfill = backfill;
    c.sync.reconcile_every_s = 3600;
    let id = engine
        .create_integration(NewIntegration {
            workspace_id: WorkspaceId::new("ws-limits").unwrap(),
            provider: ProviderKind::new("jira"),
            config: c,
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Basic {
                    email: "bot@example.com".into(),
                    api_token: "tok".into(),
                }),
                webhook_secrets: vec![SECRET.into()],
                app_secret: None,
            },
        })
        .await
        .unwrap();
    (engine, store, id)
}

async fn ingest_captured(jira: &FakeJira, engine: &Engine, id: IntegrationId) -> usize {
    assert!(jira.echoes_sent(Duration::from_secs(10)).await);
    let hooks = jira.take_webhooks();
    for body in &hooks {
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature",
            HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
        );
        let resp = engine
            .ingest(id, &Method::POST, &h, Bytes::from(body.clone()))
            .await;
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    hooks.len()
}

fn searches(jira: &FakeJira) -> usize {
    jira.requests()
        .iter()
        .filter(|r| *r == "POST /rest/api/3/search/jql")
        .count()
}

/// Jira scopes its burst limit to one endpoint and method: a 429 `jira-burst-based` on the
/// search holds back searches (the reconcile waits for `Retry-After`, and the next one is
/// refused without asking Jira), while a push to an issue goes through at once, and the
/// integration is not paused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_the_search_holds_back_searches_only() {
    let jira = FakeJira::start().await.unwrap();
    jira.insert_issue(issue(10_001));
    let (engine, store, id) = engine_on(&jira, EngineConfig::default(), true).await;
    worker(&engine).drain().await.unwrap();
    ingest_captured(&jira, &engine, id).await;
    worker(&engine).drain().await.unwrap();
    let ws = WorkspaceId::new("ws-limits").unwrap();
    let task = store.all_tasks(&ws).await.unwrap().remove(0);

    jira.set_burst_limit("POST", "/rest/api/3/search/jql", Duration::from_secs(30));
    engine.reconcile_now(&ws, id).await.unwrap();
    worker(&engine).drain().await.unwrap();
    let limited = jira.rate_limited();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert!(limited[0].ends_with("jira-burst-based"), "{limited:?}");
    let record = store.integration(id).await.unwrap().unwrap();
    assert_eq!(
        record.paused_until, None,
        "a burst does not pause the integration"
    );
    let job = store.sync_job(id).await.unwrap().unwrap();
    let wait = job.next_run_at - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(20),
        "the reconcile waits: {wait}"
    );

    // Another kind of call goes on: the push of a title reaches the issue now.
    engine
        .change_task(
            &ws,
            task.id,
            &common::site::agent(),
            &FieldPatch::new().with(FieldValue::Title("Pushed during a burst".into())),
        )
        .await
        .unwrap();
    worker(&engine).drain().await.unwrap();
    assert_eq!(
        jira.issue("10001").unwrap()["fields"]["summary"],
        "Pushed during a burst"
    );

    // A search asked for again within the wait is not sent to Jira.
    let before = searches(&jira);
    engine.reconcile_now(&ws, id).await.unwrap();
    worker(&engine).drain().await.unwrap();
    assert_eq!(jira.rate_limited().len(), 1, "{:?}", jira.rate_limited());
    assert_eq!(searches(&jira), before);
    let budget = engine.api_budget(id).await.unwrap().unwrap();
    assert!(
        budget.held.contains_key("POST /rest/api/3/search/jql"),
        "{budget:?}"
    );
    assert_eq!(budget.held.len(), 1, "{budget:?}");
    assert_eq!(budget.paused_until, None);
}

/// The points quota spent: the first call is a 429 `jira-quota-tenant-based` naming the
/// reset only in `Beta-Retry-After`; the integration pauses until then (nothing is sent
/// meanwhile), the budget says why, and the push goes through once the window resets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_exhaustion_pauses_the_integration_until_beta_retry_after_then_resumes() {
    let jira = FakeJira::start().await.unwrap();
    jira.insert_issue(issue(10_001));
    let (engine, store, id) = engine_on(&jira, EngineConfig::default(), true).await;
    worker(&engine).drain().await.unwrap();
    ingest_captured(&jira, &engine, id).await;
    worker(&engine).drain().await.unwrap();
    let ws = WorkspaceId::new("ws-limits").unwrap();
    let task = store.all_tasks(&ws).await.unwrap().remove(0);

    jira.set_quota(50, Duration::from_secs(3));
    jira.spend_quota(50);
    engine
        .change_task(
            &ws,
            task.id,
            &common::site::agent(),
            &FieldPatch::new().with(FieldValue::Title("After the reset".into())),
        )
        .await
        .unwrap();
    let asked = OffsetDateTime::now_utc();
    worker(&engine).drain().await.unwrap();
    let record = store.integration(id).await.unwrap().unwrap();
    let until = record.paused_until.expect("the integration is paused");
    let wait = until - asked;
    assert!(
        wait > time::Duration::seconds(1) && wait <= time::Duration::seconds(4),
        "paused for Beta-Retry-After: {wait}"
    );
    let budget = engine.api_budget(id).await.unwrap().unwrap();
    assert_eq!(budget.reason.as_deref(), Some("jira-quota-tenant-based"));
    assert_eq!(
        budget.paused_until.map(|p| p >= until),
        Some(true),
        "{budget:?}"
    );
    assert_eq!(budget.remaining, Some(0), "{budget:?}");
    assert_eq!(
        budget.limit, None,
        "Jira leaves the policy out at exhaustion"
    );

    // Paused: workers leave it alone, and Jira is not asked again.
    let mut done_at = None;
    for _ in 0..200 {
        worker(&engine).drain().await.unwrap();
        if jira.issue("10001").unwrap()["fields"]["summary"] == "After the reset" {
            done_at = Some(OffsetDateTime::now_utc());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done_at = done_at.expect("the push went through after the reset");
    assert!(
        done_at >= until,
        "pushed at {done_at}, paused until {until}"
    );
    assert_eq!(jira.rate_limited().len(), 1, "{:?}", jira.rate_limited());
}

/// Near the quota's limit (15 % left), the backfill spaces its pages (the next one waits,
/// longer than the near-limit gap), while webhooks for the same integration are processed
/// at once; the budget the answers showed is kept on the sync job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_limit_slows_the_backfill_while_webhooks_are_processed() {
    let jira = FakeJira::start().await.unwrap();
    for i in 0..6 {
        jira.insert_issue(issue(10_001 + i));
    }
    jira.set_quota(1000, Duration::from_secs(3600));
    jira.spend_quota(850);
    let config = EngineConfig {
        list_page_size: 2,
        near_limit_gap: Duration::from_secs(60),
        ..EngineConfig::default()
    };
    let (engine, store, id) = engine_on(&jira, config, true).await;
    worker(&engine).drain().await.unwrap();
    assert_eq!(searches(&jira), 1, "one page, then the backfill waits");
    let job = store.sync_job(id).await.unwrap().unwrap();
    assert_eq!(job.status.backfill.imported, 2);
    let wait = job.next_run_at - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::seconds(60),
        "the next page waits: {wait}"
    );
    let budget = job.status.budget.clone().expect("the budget is kept");
    assert!(budget.near_limit, "{budget:?}");
    assert_eq!(budget.limit, Some(1000));
    assert_eq!(budget.remaining, Some(1000 - 850 - 3), "{budget:?}");
    assert_eq!(budget.percent_left(), Some(14));

    // A person edits an issue the backfill has not reached: its webhook is processed now.
    jira.update_issue("10006", &json!({"summary": "Edited meanwhile"}), "acc-1")
        .await
        .unwrap();
    assert_eq!(ingest_captured(&jira, &engine, id).await, 1);
    worker(&engine).drain().await.unwrap();
    let ws = WorkspaceId::new("ws-limits").unwrap();
    let titles: Vec<String> = store
        .all_tasks(&ws)
        .await
        .unwrap()
        .iter()
        .map(|t| t.fields.title.clone())
        .collect();
    assert!(
        titles.contains(&"Edited meanwhile".to_owned()),
        "{titles:?}"
    );
    assert_eq!(searches(&jira), 1, "the backfill still waits");
    let job = store.sync_job(id).await.unwrap().unwrap();
    assert_eq!(job.status.backfill.imported, 2);
}

/// Under 5 % of the quota left, as a push's answer showed, a reconcile asked for does not
/// search at all: the repair loop stops until the quota's reset, while the push itself went
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nearly_spent_the_repair_loop_stops_until_the_reset_while_pushes_go_on() {
    let jira = FakeJira::start().await.unwrap();
    jira.insert_issue(issue(10_001));
    let (engine, store, id) = engine_on(&jira, EngineConfig::default(), true).await;
    worker(&engine).drain().await.unwrap();
    let ws = WorkspaceId::new("ws-limits").unwrap();
    let task = store.all_tasks(&ws).await.unwrap().remove(0);

    jira.set_quota(1000, Duration::from_secs(3600));
    jira.spend_quota(970);
    engine
        .change_task(
            &ws,
            task.id,
            &common::site::agent(),
            &FieldPatch::new().with(FieldValue::Title("Pushed at 3 %".into())),
        )
        .await
        .unwrap();
    worker(&engine).drain().await.unwrap();
    assert_eq!(
        jira.issue("10001").unwrap()["fields"]["summary"],
        "Pushed at 3 %"
    );
    let before = searches(&jira);
    engine.reconcile_now(&ws, id).await.unwrap();
    worker(&engine).drain().await.unwrap();
    assert_eq!(searches(&jira), before, "no search under 5 %");
    let job = store.sync_job(id).await.unwrap().unwrap();
    let wait = job.next_run_at - OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::minutes(50),
        "held until the reset: {wait}"
    );
    let budget = job.status.budget.expect("kept on the sync job");
    assert!(budget.percent_left().is_some_and(|p| p < 5), "{budget:?}");
}

/// Receives webhooks at `/hook/{name}` and hands each to the engine as the integration
/// registered under that name; answers what the engine answers.
async fn receiver(engine: Engine, routes: Arc<Mutex<HashMap<String, IntegrationId>>>) -> String {
    let app = axum::Router::new().route(
        "/hook/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: HeaderMap,
                  body: Bytes| {
                let engine = engine.clone();
                let id = routes.lock().unwrap().get(&name).copied();
                async move {
                    let Some(id) = id else {
                        return axum::http::StatusCode::NOT_FOUND;
                    };
                    let resp = engine.ingest(id, &Method::POST, &headers, body).await;
                    axum::http::StatusCode::from_u16(resp.status).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A webhook registered through `POST /rest/api/3/webhook` is delivered with `Authorization:
/// JWT …` (not `X-Hub-Signature`): accepted by the integration holding the app's shared
/// secret whose `jwt_webhook_path` is the path it was delivered to, refused (401, nothing
/// stored) with another secret or another path (the `qsh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_webhook_delivery_is_accepted_only_with_the_app_secret_and_its_qsh() {
    let jira = FakeJira::start().await.unwrap();
    jira.insert_issue(issue(10_001));
    jira.set_app_secret("jira:site-1", "the-app-secret");
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(JiraProvider::new().unwrap());
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(provider.clone())
        .build();
    let routes: Arc<Mutex<HashMap<String, IntegrationId>>> = Arc::default();
    let base = receiver(engine.clone(), routes.clone()).await;
    let ws = WorkspaceId::new("ws-jwt").unwrap();
    let cases = [
        ("good", "the-app-secret", "/hook/good", 200),
        ("secret", "another-secret", "/hook/secret", 401),
        ("qsh", "the-app-secret", "/hook/elsewhere", 401),
    ];
    for (name, app_secret, path, want) in cases {
        let mut c = IntegrationConfig::new(jira.base_url());
        c.options =
            json!({"webhook": "dynamic", "jwt_issuer": "jira:site-1", "jwt_webhook_path": path});
        let id = engine
            .create_integration(NewIntegration {
                workspace_id: ws.clone(),
                provider: ProviderKind::new("jira"),
                config: c,
                secrets: IntegrationSecrets {
                    api_auth: Some(ApiAuth::Basic {
                        email: "bot@example.com".into(),
                        api_token: "tok".into(),
                    }),
                    webhook_secrets: Vec::new(),
                    app_secret: Some(app_secret.into()),
                },
            })
            .await
            .unwrap();
        routes.lock().unwrap().insert(name.to_owned(), id);
        let mut ctx = common::ctx(&jira.base_url());
        ctx.integration_id = id;
        ctx.options = json!({"webhook": "dynamic"});
        let scope = json!({"jql": "project = KAN"});
        let url = format!("{base}/hook/{name}");
        let check = WebhookCheck {
            scope: &scope,
            target_url: Some(&url),
            known: &[],
            last_delivery_at: None,
            now: OffsetDateTime::now_utc(),
        };
        let repair = ordonis_core::Provider::repair(&*provider).unwrap();
        repair.register_webhooks(&ctx, &check).await.unwrap();
        let status = jira
            .update_issue(
                "10001",
                &json!({"summary": format!("Seen by {name}")}),
                "acc-1",
            )
            .await
            .unwrap();
        assert_eq!(status, want, "{name}");
        let stored = store
            .events(
                &ws,
                &ordonis_core::EventFilter {
                    integration_id: Some(id),
                    state: None,
                    limit: 0,
                },
            )
            .await
            .unwrap();
        assert_eq!(stored.len(), usize::from(want == 200), "{name}");
    }
}
