//! End to end over real HTTP: the testkit's fake Asana, an axum route that hands webhooks
//! to `Engine::ingest`, the memory store and a worker.
//!
//! The integration goes through the handshake (created by `AsanaClient::create_webhook`
//! against the fake, which POSTs `X-Hook-Secret` to the route), then each change made in
//! the fake becomes a signed compact event → ingest → a worker fetches the task → task fields
//! and ledger entries; an internal change reaches the fake as one `PUT /tasks/{gid}`, and its
//! echo does not start another push.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ordonis_asana::{AsanaClient, AsanaProvider, WebhookFilter};
use ordonis_core::IngestOutcome;
use ordonis_core::StoreExt;
use ordonis_core::{
    Actor, ApiAuth, Engine, Field, FieldPatch, FieldValue, IntegrationConfig, IntegrationId,
    IntegrationSecrets, Keyring, Ledger, NewIntegration, Outcome, PriorityLevel, ProviderKind,
    SecretKey, Status, StatusCategory, Task, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::asana::{FakeAsana, sign};
use ordonis_store_memory::MemoryStore;
use serde_json::json;

const TOKEN: &str = "2/1234/5678:demo";

async fn receive(
    State((engine, id)): State<(Engine, IntegrationId)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = engine.ingest(id, &method, &headers, body).await;
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

fn worker(engine: &Engine) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerConfig {
            id: "w1".into(),
            batch_size: 8,
            concurrency: 2,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(5),
        },
    )
}

async fn the_task(store: &MemoryStore, ws: &WorkspaceId, gid: &str) -> Task {
    store
        .all_tasks(ws)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.external.iter().any(|e| e.key.external_id == gid))
        .unwrap_or_else(|| panic!("task {gid} was not synced"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_events_fetch_and_push_over_http() {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let (prio, prio_opts) = fake.add_enum_field("Priority", &["High", "Medium", "Low"]);
    let (stage, stage_opts) = fake.add_enum_field("Stage", &["Doing", "Review"]);

    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(AsanaProvider::new().unwrap()))
        .build();
    let ws = WorkspaceId::new("ws-asana-e2e").unwrap();
    let mut config = IntegrationConfig::new(fake.base_url());
    config.options = json!({
        "priority_field_gid": prio,
        "in_progress": {"kind": "enum_field", "field_gid": stage, "options": ["Doing", "Review"]}
    });
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("asana"),
            config,
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Bearer {
                    token: TOKEN.into(),
                }),
                webhook_secrets: Vec::new(),
                app_secret: None,
            },
        })
        .await
        .unwrap();

    // The host's webhook route.
    let app = axum::Router::new()
        .route("/integrations/asana/hook", axum::routing::post(receive))
        .with_state((engine.clone(), integration));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!(
        "http://{}/integrations/asana/hook",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Before the handshake, a signed delivery is refused (there is no secret yet).
    let early =
        br#"{"events":[{"action":"changed","resource":{"gid":"1","resource_type":"task"}}]}"#;
    let mut h = HeaderMap::new();
    h.insert("x-hook-signature", sign("guess", early).parse().unwrap());
    let r = engine
        .ingest(integration, &Method::POST, &h, Bytes::from_static(early))
        .await;
    assert_eq!(r.status, 401);

    // Creating the webhook performs the handshake through the route.
    let client = AsanaClient::new(
        reqwest::Client::new(),
        &fake.base_url(),
        &ApiAuth::Bearer {
            token: TOKEN.into(),
        },
    )
    .unwrap();
    let created = client
        .create_webhook("1200000000000000", &target, &WebhookFilter::task_sync())
        .await
        .unwrap();
    let hooks = fake.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(created.secret.as_deref(), Some(hooks[0].secret.as_str()));
    assert_eq!(client.list_webhooks("1", None).await.unwrap().len(), 1);

    // A second handshake (an arbitrary caller) is refused and nothing is echoed.
    let replay = reqwest::Client::new()
        .post(&target)
        .header("x-hook-secret", "attacker-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.headers().get("x-hook-secret").is_none());

    // A change in Asana → compact events → fetch → task fields and ledger entries.
    let gid = fake.create_task("Write docs");
    let delivered = fake
        .change_task(
            &gid,
            json!({"name": "Write the docs", "notes": "All of them", "assignee": "12345",
                   "due_on": "2026-12-01", "custom_fields": {prio.clone(): prio_opts[0].clone()}}),
        )
        .await;
    assert_eq!(delivered, Some(1));
    assert_eq!(fake.heartbeat().await, 1, "a heartbeat is accepted");
    worker(&engine).drain().await.unwrap();
    let task = the_task(&store, &ws, &gid).await;
    assert_eq!(task.fields.title, "Write the docs");
    assert_eq!(task.fields.description, "All of them");
    assert_eq!(task.fields.assignee.as_ref().unwrap().account_id, "12345");
    assert_eq!(
        task.fields.priority.as_ref().unwrap().level,
        PriorityLevel::High
    );
    assert_eq!(task.fields.status.category, StatusCategory::Todo);
    assert_eq!(
        task.fields.due_date,
        ordonis_asana::normalize::parse_date("2026-12-01")
    );
    let ledger = store.task_ledger(&ws, task.id).await.unwrap();
    assert!(ledger.len() >= 5, "ledger entries: {}", ledger.len());

    // Redelivering the same body is stored once (dedupe by body hash).
    let body = br#"{"events":[{"action":"changed","created_at":"2026-01-01T00:00:00.000Z","resource":{"gid":"GID","resource_type":"task"}}]}"#;
    let body = String::from_utf8_lossy(body).replace("GID", &gid);
    let mut h = HeaderMap::new();
    h.insert(
        "x-hook-signature",
        sign(&hooks[0].secret, body.as_bytes()).parse().unwrap(),
    );
    let first = engine
        .ingest(integration, &Method::POST, &h, Bytes::from(body.clone()))
        .await;
    let again = engine
        .ingest(integration, &Method::POST, &h, Bytes::from(body))
        .await;
    assert!(
        matches!(first.outcome, IngestOutcome::Stored(_)),
        "{first:?}"
    );
    assert!(
        matches!(again.outcome, IngestOutcome::Duplicate(_)),
        "{again:?}"
    );
    worker(&engine).drain().await.unwrap();

    // An internal change → one PUT with the data wrapper; the echo confirms, no new push.
    engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new()
                .with(FieldValue::Title("Write the docs (v2)".into()))
                .with(FieldValue::Status(Status::new(
                    StatusCategory::InProgress,
                    "Review",
                ))),
        )
        .await
        .unwrap();
    worker(&engine).drain().await.unwrap();
    let puts = fake.puts();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0].0, gid);
    assert_eq!(
        puts[0].1,
        json!({"name": "Write the docs (v2)", "completed": false,
               "custom_fields": {stage.clone(): stage_opts[1].clone()}})
    );
    let remote = fake.task(&gid).unwrap();
    assert_eq!(remote["name"], "Write the docs (v2)");
    // Let the echo arrive and be processed.
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        worker(&engine).drain().await.unwrap();
        let t = the_task(&store, &ws, &gid).await;
        if t.fields.status.name == "Review" {
            break;
        }
    }
    worker(&engine).drain().await.unwrap();
    let task = the_task(&store, &ws, &gid).await;
    assert_eq!(task.fields.title, "Write the docs (v2)");
    assert_eq!(
        task.fields.status,
        Status::new(StatusCategory::InProgress, "Review")
    );
    assert_eq!(fake.puts().len(), 1, "the echo started no new push");
    let ledger = store.task_ledger(&ws, task.id).await.unwrap();
    assert!(
        ledger.iter().any(
            |e| e.record.field == Some(Field::Status) && e.record.outcome == Outcome::Confirmed
        ),
        "the status push was confirmed by its echo"
    );

    // A status Asana cannot hold is refused in the answer and the ledger, not coerced into
    // an incomplete task (#18: "Blocked" became "To Do", shown nowhere).
    let receipt = engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(FieldValue::Status(Status::new(
                StatusCategory::Todo,
                "Blocked",
            ))),
        )
        .await
        .unwrap();
    assert!(!receipt.push_queued);
    assert_eq!(receipt.refused.len(), 1, "{receipt:?}");
    assert!(
        receipt.refused[0].1.contains("no status \"Blocked\""),
        "{receipt:?}"
    );
    assert!(
        receipt
            .entries
            .iter()
            .any(|e| e.outcome == Outcome::Rejected)
    );
    worker(&engine).drain().await.unwrap();
    assert_eq!(fake.puts().len(), 1, "nothing was pushed");

    // "Done" is echoed by Asana as "Completed": our echo, confirmed, not a conflict (#18).
    engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(FieldValue::Status(Status::new(
                StatusCategory::Done,
                "Done",
            ))),
        )
        .await
        .unwrap();
    for _ in 0..50 {
        worker(&engine).drain().await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let t = the_task(&store, &ws, &gid).await;
        if t.fields.status.category == StatusCategory::Done
            && !t.has_unpushed_changes()
            && t.sync[&Field::Status].sent.is_empty()
        {
            break;
        }
    }
    let t = the_task(&store, &ws, &gid).await;
    assert_eq!(t.fields.status.name, "Completed");
    assert!(
        t.sync[&Field::Status].sent.is_empty(),
        "{:?}",
        t.sync[&Field::Status]
    );
    let ledger = store.task_ledger(&ws, task.id).await.unwrap();
    assert!(
        !ledger
            .iter()
            .any(|e| e.record.field == Some(Field::Status) && e.record.outcome == Outcome::Conflict),
        "the renamed echo is not a conflict"
    );

    // Clearing the due date of a task with a start date clears the start date too (Asana
    // refuses the whole PUT otherwise).
    assert!(fake.set_start_on(&gid, "2026-11-20"));
    let puts_before = fake.puts().len();
    engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(FieldValue::DueDate(None)),
        )
        .await
        .unwrap();
    worker(&engine).drain().await.unwrap();
    let remote = fake.task(&gid).unwrap();
    assert!(
        remote["due_on"].is_null() && remote["start_on"].is_null(),
        "{remote}"
    );
    assert_eq!(fake.puts().len(), puts_before + 1);

    // One field Asana refuses (the priority field is not on the task's project) no longer
    // refuses the rest: the title goes through, field by field.
    fake.detach_field(&prio);
    engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new()
                .with(FieldValue::Title("Write the docs (v3)".into()))
                .with(FieldValue::Priority(Some(ordonis_core::Priority {
                    level: PriorityLevel::Low,
                    name: "Low".into(),
                }))),
        )
        .await
        .unwrap();
    worker(&engine).drain().await.unwrap();
    assert_eq!(fake.task(&gid).unwrap()["name"], "Write the docs (v3)");
    let ledger = store.task_ledger(&ws, task.id).await.unwrap();
    let refused = ledger
        .iter()
        .rev()
        .find(|e| e.record.field == Some(Field::Priority) && e.record.outcome == Outcome::Rejected)
        .expect("the priority was refused");
    assert!(
        refused.record.rule.contains("not on given object"),
        "{}",
        refused.record.rule
    );
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        worker(&engine).drain().await.unwrap();
    }

    // Deleted in Asana → a tombstone; restored from the trash (`undeleted`) → back.
    assert_eq!(fake.delete_task(&gid).await, Some(1));
    worker(&engine).drain().await.unwrap();
    assert!(the_task(&store, &ws, &gid).await.deleted);
    assert_eq!(fake.undelete_task(&gid).await, Some(1));
    worker(&engine).drain().await.unwrap();
    assert!(!the_task(&store, &ws, &gid).await.deleted, "revived");
    let ledger = store.task_ledger(&ws, task.id).await.unwrap();
    assert!(
        ledger
            .iter()
            .any(|e| e.record.op == ordonis_core::Op::Restore)
    );

    // A 403 on the fetch (the token can no longer see the task) is not a deletion: the task
    // stays, and the event fails with the reason, visible among the integration's events.
    let private = fake.create_task("Private plans");
    fake.change_task(&private, json!({"name": "Private plans v1"}))
        .await;
    worker(&engine).drain().await.unwrap();
    assert_eq!(
        the_task(&store, &ws, &private).await.fields.title,
        "Private plans v1"
    );
    assert_eq!(fake.hide_task(&private).await, Some(1));
    worker(&engine).drain().await.unwrap();
    assert!(
        !the_task(&store, &ws, &private).await.deleted,
        "403 is not deletion"
    );
    let mut filter = ordonis_core::JobFilter::new(ordonis_core::Queue::Inbox);
    filter.integration_id = Some(integration);
    filter.state = Some(ordonis_core::JobState::Failed);
    let failed = ordonis_core::Store::jobs(&*store, &filter).await.unwrap();
    let error = failed
        .iter()
        .find_map(|j| match j {
            ordonis_core::Job::Event(e) if e.object_key.as_deref() == Some(private.as_str()) => {
                e.last_error.clone()
            }
            _ => None,
        })
        .expect("the event failed with an error");
    assert!(error.contains("403") && error.contains("kept"), "{error}");
    // ... and on the integration: the object it may not read, once, with the reason.
    let problems = engine.access_problems(integration).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].external_id, private);
    assert!(problems[0].error.contains("403"), "{}", problems[0].error);
    // Visible again: the next event syncs it.
    fake.change_task(&private, json!({"name": "Private plans v2"}))
        .await;
    fake.show_task(&private).await;
    worker(&engine).drain().await.unwrap();
    let t = the_task(&store, &ws, &private).await;
    assert!(!t.deleted);
    assert_eq!(t.fields.title, "Private plans v2");
    assert_eq!(
        engine.access_problems(integration).await.unwrap(),
        vec![],
        "a fetch that works again clears the integration's error"
    );

    // A change event for a task the account can no longer see (404 on fetch) tombstones too.
    let gone = fake.create_task("Short-lived");
    fake.change_task(&gone, json!({"name": "Short-lived!"}))
        .await;
    worker(&engine).drain().await.unwrap();
    assert!(!the_task(&store, &ws, &gone).await.deleted);
    let ev = format!(
        r#"{{"events":[{{"action":"changed","resource":{{"gid":"{gone}","resource_type":"task"}},"user":null,"created_at":"2030-01-01T00:00:00Z"}}]}}"#
    );
    // The task disappears without a `deleted` event reaching us.
    fake.set_echo(false);
    let mut h = HeaderMap::new();
    h.insert(
        "x-hook-signature",
        sign(&hooks[0].secret, ev.as_bytes()).parse().unwrap(),
    );
    drop(fake.task(&gone));
    let hooks_before = fake.webhooks().len();
    client.delete_webhook(&hooks[0].gid).await.unwrap();
    assert_eq!(fake.webhooks().len(), hooks_before - 1);
    fake.delete_task(&gone).await;
    let r = engine
        .ingest(integration, &Method::POST, &h, Bytes::from(ev))
        .await;
    assert_eq!(r.status, 200);
    worker(&engine).drain().await.unwrap();
    assert!(the_task(&store, &ws, &gone).await.deleted);
}
