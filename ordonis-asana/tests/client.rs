//! The client and the push mapping at the HTTP level, against wiremock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TOKEN, task_json};
use ordonis_asana::{AsanaClient, AsanaError, AsanaProvider, ConcurrencyLimits, WebhookFilter};
use ordonis_core::{
    ApiAuth, Assignee, Field, FieldPatch, FieldValue, ObjectKey, Priority, PriorityLevel, Provider,
    ProviderError, Status, StatusCategory,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> AsanaClient {
    AsanaClient::new(
        reqwest::Client::new(),
        &server.uri(),
        &ApiAuth::Bearer {
            token: TOKEN.into(),
        },
    )
    .unwrap()
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "data": data }))
}

#[tokio::test]
async fn get_task_asks_for_the_mapped_fields() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/tasks/42"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(query_param(
            "opt_fields",
            ordonis_asana::client::TASK_OPT_FIELDS,
        ))
        .respond_with(ok(task_json("42", "Buy catnip")))
        .expect(1)
        .mount(&server)
        .await;
    let t = client(&server).get_task("42").await.unwrap();
    assert_eq!(t["name"], "Buy catnip");
    // A gid that would change the path never leaves the client.
    assert!(matches!(
        client(&server).get_task("42/../users").await,
        Err(AsanaError::Config(_))
    ));
    assert!(matches!(
        AsanaClient::new(
            reqwest::Client::new(),
            &server.uri(),
            &ApiAuth::Basic {
                email: "a".into(),
                api_token: "b".into()
            }
        ),
        Err(AsanaError::Config(_))
    ));
}

#[tokio::test]
async fn push_writes_one_put_with_the_data_wrapper_and_caches_enum_options() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/custom_fields/900"))
        .respond_with(ok(json!({"gid": "900", "enum_options": [
            {"gid": "901", "name": "High", "enabled": true},
            {"gid": "902", "name": "Low", "enabled": true},
            {"gid": "903", "name": "Medium", "enabled": false}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/custom_fields/800"))
        .respond_with(ok(json!({"gid": "800", "enum_options": [
            {"gid": "801", "name": "Doing"}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/tasks/42"))
        .and(body_json(json!({"data": {
            "name": "New title", "html_notes": "<body>Body</body>", "assignee": "12345", "due_on": "2026-03-04",
            "completed": false,
            "custom_fields": {"900": "901", "800": "801"}
        }})))
        .respond_with(ok(task_json("42", "New title")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/tasks/42"))
        .and(body_json(json!({"data": {
            "assignee": null, "due_on": null, "due_at": null, "completed": true,
            "custom_fields": {"900": "902"}
        }})))
        .respond_with(ok(task_json("42", "New title")))
        .expect(1)
        .mount(&server)
        .await;

    // Each push reads the task once: the first for its rich text (a description is merged
    // into it, never written as plain `notes`), the second because clearing the due date
    // must clear a start date with it (this task has none, so the PUT leaves start_on alone).
    Mock::given(method("GET"))
        .and(path("/tasks/42"))
        .respond_with(ok(task_json("42", "New title")))
        .expect(2)
        .mount(&server)
        .await;

    let provider = AsanaProvider::new().unwrap();
    let ctx = common::ctx(
        &server.uri(),
        json!({
            "priority_field_gid": "900",
            "in_progress": {"kind": "enum_field", "field_gid": "800", "options": ["Doing"]}
        }),
    );
    let key = ObjectKey::new("42", "task");
    let date = ordonis_asana::normalize::parse_date("2026-03-04");
    let patch = FieldPatch::new()
        .with(FieldValue::Title("New title".into()))
        .with(FieldValue::Description("Body".into()))
        .with(FieldValue::Assignee(Some(Assignee {
            account_id: "12345".into(),
            display_name: None,
            email: None,
        })))
        .with(FieldValue::DueDate(date))
        .with(FieldValue::Status(Status::new(
            StatusCategory::InProgress,
            "In Progress",
        )))
        .with(FieldValue::Priority(Some(Priority {
            level: PriorityLevel::High,
            name: "high".into(),
        })));
    let out = provider.push(&ctx, &key, &patch).await.unwrap();
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.applied.len(), 6);

    // Second push: cached options (no second GET /custom_fields), by level when unnamed.
    let patch = FieldPatch::new()
        .with(FieldValue::Assignee(None))
        .with(FieldValue::DueDate(None))
        .with(FieldValue::Status(Status::new(StatusCategory::Done, "")))
        .with(FieldValue::Priority(Some(Priority {
            level: PriorityLevel::Low,
            name: String::new(),
        })));
    let out = provider.push(&ctx, &key, &patch).await.unwrap();
    assert!(out.refused.is_empty(), "{:?}", out.refused);
    assert_eq!(out.applied.len(), 4);
    // Exactly one GET per enum field so far (the `.expect(1)`s), and both PUTs matched.
    server.verify().await;
    server.reset().await;

    // A disabled option is never chosen; an unknown name refreshes the options once (the
    // option may be new), then the field is refused and nothing is written.
    Mock::given(method("GET"))
        .and(path("/custom_fields/900"))
        .respond_with(ok(json!({"gid": "900", "enum_options": [
            {"gid": "903", "name": "Medium", "enabled": false}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let patch = FieldPatch::new().with(FieldValue::Priority(Some(Priority {
        level: PriorityLevel::Medium,
        name: "Medium".into(),
    })));
    let out = provider.push(&ctx, &key, &patch).await.unwrap();
    assert_eq!(out.applied, vec![]);
    assert_eq!(out.refused[0].0, Field::Priority);
}

#[tokio::test]
async fn push_refusals_are_per_field() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/tasks/42"))
        .and(body_json(json!({"data": {"name": "T"}})))
        .respond_with(ok(task_json("42", "T")))
        .expect(1)
        .mount(&server)
        .await;
    let provider = AsanaProvider::new().unwrap();
    let ctx = common::ctx(
        &server.uri(),
        json!({"in_progress": {"kind": "section", "names": ["Doing"]}}),
    );
    let key = ObjectKey::new("42", "task");
    let patch = FieldPatch::new()
        .with(FieldValue::Title("T".into()))
        .with(FieldValue::Status(Status::new(
            StatusCategory::InProgress,
            "Doing",
        )))
        .with(FieldValue::Priority(None));
    let out = provider.push(&ctx, &key, &patch).await.unwrap();
    assert_eq!(out.applied, vec![Field::Title]);
    let refused: Vec<Field> = out.refused.iter().map(|r| r.0).collect();
    assert_eq!(refused, vec![Field::Status, Field::Priority]);

    // Asana refusing the PUT (400) refuses its fields, never retried.
    server.reset().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"errors": [{"message": "assignee: Not a recognized ID"}]})),
        )
        .mount(&server)
        .await;
    let patch = FieldPatch::new().with(FieldValue::Title("T".into()));
    let out = provider.push(&ctx, &key, &patch).await.unwrap();
    assert_eq!(out.applied, vec![]);
    assert!(
        out.refused[0].1.contains("Not a recognized ID"),
        "{:?}",
        out.refused
    );

    // Bad options are a terminal misconfiguration.
    let bad = common::ctx(&server.uri(), json!({"in_progress": 5}));
    assert!(matches!(
        provider.push(&bad, &key, &patch).await,
        Err(ProviderError::Terminal(_))
    ));
}

#[tokio::test]
async fn rate_limits_server_errors_and_transport() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "12"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let c = client(&server);
    match c.update_task("1", &serde_json::Map::new()).await {
        Err(AsanaError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(12));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c.get_task("1").await,
        Err(AsanaError::Server { status: 503, .. })
    ));
    // Nothing listening: a transport failure, retryable.
    let dead = AsanaClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        &ApiAuth::Bearer { token: "t".into() },
    )
    .unwrap();
    let e = dead.get_task("1").await.unwrap_err();
    assert!(
        matches!(e, AsanaError::Transport { .. }) && e.is_retryable(),
        "{e:?}"
    );
    // The HTTP client's error is kept as the source, through the provider's classification.
    let cause = std::error::Error::source(&e).map(ToString::to_string);
    let e = ordonis_core::ProviderError::from(e);
    let Some(source) = std::error::Error::source(&e) else {
        panic!("no source: {e:?}");
    };
    assert_eq!(Some(source.to_string()), cause);
    assert!(
        matches!(e, ordonis_core::ProviderError::Retryable { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn events_with_sync_tokens() {
    let server = MockServer::start().await;
    // First call: no token → 412 with a fresh one (Asana's documented way to start).
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(query_param("resource", "77"))
        .and(query_param_is_missing("sync"))
        .respond_with(ResponseTemplate::new(412).set_body_json(
            json!({"errors": [{"message": "Sync token invalid or too old"}], "sync": "tok-1"}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(query_param("sync", "tok-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"action": "changed", "resource": {"gid": "5", "resource_type": "task"}}],
            "sync": "tok-2", "has_more": false
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(query_param("sync", "old"))
        .respond_with(ResponseTemplate::new(412).set_body_json(
            json!({"errors": [{"message": "Sync token invalid or too old"}], "sync": "tok-9"}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let first = c.events("77", None).await.unwrap();
    assert_eq!((first.sync.as_str(), first.events.len()), ("tok-1", 0));
    let next = c.events("77", Some("tok-1")).await.unwrap();
    assert_eq!(next.sync, "tok-2");
    assert_eq!(
        ordonis_asana::webhook::hints_from_events(&next.events)[0]
            .key
            .external_id,
        "5"
    );
    match c.events("77", Some("old")).await {
        Err(AsanaError::SyncTokenExpired { sync }) => assert_eq!(sync.as_deref(), Some("tok-9")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn webhooks_create_list_all_pages_delete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhooks"))
        .and(body_json(json!({"data": {
            "resource": "8675309", "target": "https://example.com/hook?i=1",
            "filters": [{"resource_type": "task", "action": "deleted"}]
        }})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "data": {"gid": "43214", "resource": {"gid": "8675309", "name": "Bugs"},
                     "target": "https://example.com/hook?i=1", "active": true},
            "X-Hook-Secret": "abc"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/webhooks"))
        .and(query_param("workspace", "1331"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("offset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "1", "target": "https://a"}],
            "next_page": {"offset": "eyJ0", "path": "/webhooks?offset=eyJ0", "uri": "x"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/webhooks"))
        .and(query_param("offset", "eyJ0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"gid": "2", "target": "https://b"}], "next_page": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/webhooks/43214"))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let filters = [WebhookFilter {
        resource_type: Some("task".into()),
        action: Some("deleted".into()),
        ..WebhookFilter::default()
    }];
    let w = c
        .create_webhook("8675309", "https://example.com/hook?i=1", &filters)
        .await
        .unwrap();
    assert_eq!(
        (w.webhook.gid.as_str(), w.secret.as_deref()),
        ("43214", Some("abc"))
    );
    let all = c.list_webhooks("1331", None).await.unwrap();
    let gids: Vec<&str> = all.iter().map(|w| w.gid.as_str()).collect();
    assert_eq!(gids, ["1", "2"]);
    c.delete_webhook("43214").await.unwrap();
    assert_eq!(WebhookFilter::task_sync().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_caps_bound_writes_not_reads() {
    // Each write holds its slot this long; long enough that the read below surely completes
    // while the first two writes still hold theirs, on a loaded machine too.
    let hold = Duration::from_millis(1_000);
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ok(task_json("1", "x")).set_delay(hold))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok(task_json("1", "x")))
        .mount(&server)
        .await;
    let limits = Arc::new(ConcurrencyLimits::new(50, 2));
    let c = client(&server).with_limits(limits.clone());
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            c.update_task("1", &serde_json::Map::new()).await
        }));
    }
    // Waits for the condition: both write slots taken.
    let until = Instant::now() + Duration::from_secs(10);
    while limits.available_writes() != 0 {
        assert!(Instant::now() < until, "the writes never took both slots");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Reads have their own cap: not queued behind the writes, so the read is answered
    // while both write slots are still held.
    c.get_task("1").await.unwrap();
    assert_eq!(
        limits.available_writes(),
        0,
        "the read waited for a write slot ({:?} after the start)",
        start.elapsed()
    );
    for h in handles {
        h.await.unwrap().unwrap();
    }
    // 6 writes, 2 at a time: at least 3 rounds (a lower bound, which load cannot break).
    assert!(
        start.elapsed() >= hold * 3 - Duration::from_millis(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(limits.available_writes(), 2);
}

/// A 307 is neither followed (the token and the body would go elsewhere) nor taken for a
/// refused field: the push and the fetch fail, terminally, naming where it pointed.
#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    let target = format!("{}/stolen", elsewhere.uri());
    for m in ["PUT", "GET"] {
        Mock::given(method(m))
            .and(path("/tasks/42"))
            .respond_with(ResponseTemplate::new(307).insert_header("location", target.as_str()))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(wiremock::matchers::any())
        .respond_with(ok(task_json("42", "x")))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let provider = AsanaProvider::new().unwrap();
    let ctx = common::ctx(&server.uri(), json!({}));
    let key = ObjectKey::new("42", "task");
    let patch = FieldPatch::new().with(FieldValue::Title("New title".into()));
    let err = provider.push(&ctx, &key, &patch).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains(&target) && m.contains("307")),
        "{err:?}"
    );
    let err = provider.fetch_task(&ctx, &key).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains(&target)),
        "{err:?}"
    );
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

/// Issue #31, point 8: answers are read up to a cap (8 MiB by default, set per provider): a
/// larger one is `AsanaError::TooLarge` ("too large", a bad input, not retried).
#[tokio::test]
async fn answers_over_the_size_cap_are_too_large() {
    let limit = ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/tasks/42"))
        .respond_with(ok(task_json("42", &"x".repeat(9 * 1024 * 1024))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/tasks/43"))
        .respond_with(ok(task_json("43", &"y".repeat(64 * 1024))))
        .mount(&server)
        .await;
    let err = client(&server).get_task("42").await.unwrap_err();
    assert!(
        matches!(err, AsanaError::TooLarge { limit: l } if l == limit),
        "{err}"
    );
    assert!(!err.is_retryable());
    let as_provider = ProviderError::from(err);
    assert!(
        matches!(&as_provider, ProviderError::BadInput(m) if m.contains("too large")),
        "{as_provider}"
    );
    // The cap is the client's (and the provider's) setting.
    assert!(client(&server).get_task("43").await.is_ok());
    let small = client(&server).with_max_response_bytes(16 * 1024);
    assert!(matches!(
        small.get_task("43").await,
        Err(AsanaError::TooLarge { limit: 16_384 })
    ));
    let provider = AsanaProvider::new()
        .unwrap()
        .with_max_response_bytes(16 * 1024);
    let ctx = common::ctx(&server.uri(), json!({}));
    assert!(matches!(
        provider.client(&ctx).unwrap().get_task("43").await,
        Err(AsanaError::TooLarge { limit: 16_384 })
    ));
}
