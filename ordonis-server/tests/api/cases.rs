//! The API cases, compiled once per store (see `api.rs`): every endpoint and every bad input.

use super::common::{self, Api, SECRET, TOKEN, eventually, fixture, sign};
use ordonis_core::vera::{ExportCheck, Receipt, TrustedKeys, verify_export};
use ordonis_fakes::jira::FakeJira;
use serde_json::{Value, json};

async fn setup() -> (ordonis_server::Server, Api, FakeJira, String, String) {
    let server = start().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (id, url) = api.jira_integration("acme", &jira).await;
    (server, api, jira, id, url)
}

/// A server on this module's store (SQLite or `MemoryStore`).
async fn start() -> ordonis_server::Server {
    common::start_on(module_path!(), |_| {}).await
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn healthz_and_metrics() {
    let server = start().await;
    let api = Api::new(&server);
    let r = api.http.get(api.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");
    // `/metrics` is not public (its series name integration ids): the admin token reads it.
    let r = api.http.get(api.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = api
        .http
        .get(api.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    // The store's series describe this server's (empty) store; the core's counters are the
    // process's, listed from the start with the names dashboards use.
    for needle in [
        "ordonis_inbox_rows{state=\"pending\"} 0",
        "ordonis_outbox_rows{state=\"dead\"} 0",
        "# TYPE ordonis_jobs_total counter",
        "ordonis_jobs_total{result=\"completed\"} ",
        "ordonis_webhooks_total{outcome=\"rejected\"} ",
        "ordonis_rate_limit_pauses_total ",
        "ordonis_push_errors_total ",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn admin_api_requires_the_token() {
    let (server, api, _jira, id, _) = setup().await;
    let routes = [
        ("GET", "/api/tasks?workspace_id=acme".to_owned()),
        ("GET", format!("/api/tasks/{id}")),
        ("GET", "/api/events".to_owned()),
        ("POST", "/api/integrations".to_owned()),
        ("GET", "/api/ledger/acme/checkpoint".to_owned()),
        ("GET", "/api/ledger/acme/export".to_owned()),
        ("GET", "/api/ledger/acme/proof/0".to_owned()),
        ("POST", format!("/api/events/{id}/replay")),
        ("PATCH", format!("/api/tasks/{id}")),
    ];
    for (method, path) in routes {
        for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
            if auth == Some(TOKEN) {
                continue;
            }
            let mut rb = api.http.request(method.parse().unwrap(), api.url(&path));
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {auth:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(error_code(&v), "unauthenticated");
        }
    }
    // The token as a cookie value does not authenticate the API either.
    let r = api
        .http
        .get(api.url("/api/events"))
        .header("cookie", format!("ordonis_session={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    server.shutdown().await;
}

#[tokio::test]
async fn create_integration_validates_and_never_returns_secrets() {
    let (server, api, jira, id, url) = setup().await;
    assert!(
        url.ends_with(&format!("/integrations/jira/{id}/webhook")),
        "{url}"
    );
    let good = json!({
        "workspace_id": "w2",
        "provider": "jira",
        "base_url": jira.base_url(),
        "auth": {"type": "bearer", "token": "tok-xyz"},
        "webhook_secrets": ["s1"],
        "scope": {"jql": "project = HO"},
        "backfill": false,
    });
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut v = good.clone();
    v["provider"] = json!("trello");
    cases.push((v, "provider"));
    let mut v = good.clone();
    v["webhook_secrets"] = json!([]);
    cases.push((v, "webhook_secrets"));
    let mut v = good.clone();
    v["auth"] = json!({"type": "password", "password": "x"});
    cases.push((v, "auth"));
    let mut v = good.clone();
    v["base_url"] = json!("not a url");
    cases.push((v, "base_url"));
    let mut v = good.clone();
    v["workspace_id"] = json!("");
    cases.push((v, "workspace"));
    let mut v = good.clone();
    v["surprise"] = json!(1);
    cases.push((v, "surprise"));
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("auth");
    cases.push((v, "auth"));
    // The repair loop's settings: a Jira integration needs a scope, the interval is ≥ 1.
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("scope");
    cases.push((v, "scope"));
    let mut v = good.clone();
    v["scope"] = json!({"jql": ""});
    cases.push((v, "scope"));
    let mut v = good.clone();
    v["reconcile_every_s"] = json!(0);
    cases.push((v, "reconcile_every_s"));
    let mut v = good.clone();
    v["reconcile_every_s"] = json!(-5);
    cases.push((v, "reconcile_every_s"));
    let mut v = good.clone();
    v["backfill"] = json!("yes");
    cases.push((v, "backfill"));
    for (body, mention) in cases {
        let (s, v) = api.post("/api/integrations", &body).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert_eq!(error_code(&v), "bad_request");
        let msg = v["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(mention), "{mention:?} not in {msg:?}");
    }
    // Malformed JSON, a missing content type, an oversized body.
    let r = api
        .http
        .post(api.url("/api/integrations"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"workspace_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "bad_request");
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    let r = api
        .http
        .post(api.url("/api/integrations"))
        .bearer_auth(TOKEN)
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let mut big = good.clone();
    big["options"] = json!({"pad": "x".repeat(100 * 1024)});
    let (s, v) = api.post("/api/integrations", &big).await;
    assert_eq!(s, 413, "{v}");
    // None of the refused requests stored anything.
    let (s, v) = api.get("/api/integrations?workspace_id=w2").await;
    assert_eq!(s, 200);
    assert_eq!(v["integrations"].as_array().unwrap().len(), 0, "{v}");
    // The good one is stored; its listing holds no secret.
    let (s, created) = api.post("/api/integrations", &good).await;
    assert_eq!(s, 201, "{created}");
    let text = created.to_string();
    let (_, list) = api.get("/api/integrations?workspace_id=w2").await;
    let list_text = list.to_string();
    assert_eq!(list["integrations"].as_array().unwrap().len(), 1);
    for secret in ["tok-xyz", "s1\"", "very-secret-api-token", SECRET] {
        assert!(
            !text.contains(secret) && !list_text.contains(secret),
            "{secret} leaked"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn base_url_outside_public_hosts_is_refused_without_the_flag() {
    let server = common::start_on(module_path!(), |c| c.allow_any_provider_url = false).await;
    let api = Api::new(&server);
    for (provider, base) in [
        ("jira", "http://127.0.0.1:5432"),
        ("jira", "https://169.254.169.254"),
        ("jira", "https://acme.atlassian.net.evil.example"),
        ("asana", "https://internal.example"),
    ] {
        let (s, v) = api
            .post(
                "/api/integrations",
                &json!({"workspace_id": "w", "provider": provider, "base_url": base,
                        "auth": {"type": "bearer", "token": "t"}, "webhook_secrets": ["s"]}),
            )
            .await;
        assert_eq!(s, 400, "{base}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("base_url"));
    }
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({"workspace_id": "w", "provider": "jira", "base_url": "https://acme.atlassian.net",
                    "auth": {"type": "bearer", "token": "t"}, "webhook_secrets": ["s"],
                    "scope": {"jql": "project = HO"}, "backfill": false}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    server.shutdown().await;
}

/// A `base_url` is kept as scheme, host and port only; one with credentials, a path, a query
/// or a fragment is refused (the adapters append their API paths to it).
#[tokio::test]
async fn base_url_is_normalized_and_extras_are_refused() {
    let server = common::start_on(module_path!(), |c| c.allow_any_provider_url = false).await;
    let api = Api::new(&server);
    let create = |provider: &'static str, base: &'static str| {
        let api = api.clone();
        async move {
            api.post(
                "/api/integrations",
                &json!({"workspace_id": "norm", "provider": provider, "base_url": base,
                        "auth": {"type": "bearer", "token": "t"}, "webhook_secrets": ["s"],
                        "scope": if provider == "jira" { json!({"jql": "project = HO"}) } else { Value::Null },
                        "backfill": false}),
            )
            .await
        }
    };
    for (provider, base) in [
        ("jira", "https://user:pw@acme.atlassian.net"),
        ("jira", "https://user@acme.atlassian.net"),
        ("jira", "https://acme.atlassian.net/wiki"),
        ("jira", "https://acme.atlassian.net/rest/api/3/"),
        (
            "jira",
            "https://acme.atlassian.net/?next=https://evil.example",
        ),
        ("jira", "https://acme.atlassian.net/#x"),
        ("asana", "https://app.asana.com/api/2.0"),
        ("asana", "https://app.asana.com/api/1.0?x=1"),
    ] {
        let (s, v) = create(provider, base).await;
        assert_eq!(s, 400, "{base}: {v}");
        assert_eq!(error_code(&v), "bad_request");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("base_url"),
            "{v}"
        );
    }
    let (s, v) = create("jira", "HTTPS://Acme.Atlassian.NET/").await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = create("asana", "https://app.asana.com/api/1.0/").await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = create("asana", "https://app.asana.com").await;
    assert_eq!(s, 201, "{v}");
    let (_, list) = api.get("/api/integrations?workspace_id=norm").await;
    let mut urls: Vec<&str> = list["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["base_url"].as_str().unwrap())
        .collect();
    urls.sort_unstable();
    assert_eq!(
        urls,
        [
            "https://acme.atlassian.net",
            "https://app.asana.com/api/1.0",
            "https://app.asana.com/api/1.0"
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn webhook_rejects_bad_input_and_stores_nothing() {
    let (server, api, _jira, id, url) = setup().await;
    let body = fixture("cloud_issue_updated_status_zulip.json");
    let post = |url: String, sig: Option<String>, body: Vec<u8>| {
        let http = api.http.clone();
        async move {
            let mut rb = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-atlassian-webhook-identifier", "delivery-1")
                .body(body);
            if let Some(s) = sig {
                rb = rb.header("x-hub-signature", s);
            }
            let r = rb.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Missing and wrong signatures: 401.
    let (s, v) = post(url.clone(), None, body.clone()).await;
    assert_eq!(s, 401, "{v}");
    let wrong = ordonis_fakes::jira::sign("not-the-secret", &body);
    let (s, v) = post(url.clone(), Some(wrong), body.clone()).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(error_code(&v), "unauthenticated");
    // Signed over other bytes.
    let (s, _) = post(url.clone(), Some(sign(b"{}")), body.clone()).await;
    assert_eq!(s, 401);
    // Unknown integration (a random id, not a UUID, another provider's path): 404.
    let base = api.base.clone();
    for u in [
        format!("{base}/integrations/jira/{}/webhook", uuid::Uuid::now_v7()),
        format!("{base}/integrations/jira/not-a-uuid/webhook"),
        format!("{base}/integrations/asana/{id}/webhook"),
    ] {
        let (s, v) = post(u.clone(), Some(sign(&body)), body.clone()).await;
        assert_eq!(s, 404, "{u}: {v}");
        assert_eq!(error_code(&v), "not_found");
    }
    // Over 1 MiB: 413 (even correctly signed).
    let mut big = b"{\"pad\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    big.extend(b"\"}");
    let (s, v) = post(url.clone(), Some(sign(&big)), big).await;
    assert_eq!(s, 413, "{v}");
    // Nothing was stored by any of them.
    assert!(api.events("?workspace_id=acme").await.is_empty());
    assert!(api.tasks("acme").await.is_empty());
    // The same delivery signed right: 200 stored, then 200 duplicate, one row.
    let stored = "ordonis_webhooks_total{outcome=\"stored\"}";
    let duplicate = "ordonis_webhooks_total{outcome=\"duplicate\"}";
    let (stored_before, duplicate_before) = (api.metric(stored).await, api.metric(duplicate).await);
    let (s, v) = post(url.clone(), Some(sign(&body)), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "stored");
    let (s, v) = post(url.clone(), Some(sign(&body)), body.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "duplicate");
    let events = api.events(&format!("?integration_id={id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["delivery_id"], "delivery-1");
    // Counted by the engine (other tests in this process may add to the same counters).
    assert!(api.metric(stored).await >= stored_before + 1.0);
    assert!(api.metric(duplicate).await >= duplicate_before + 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn tasks_patch_ledger_and_bad_input() {
    let (server, api, jira, _id, _) = setup().await;
    assert_eq!(
        jira.deliver(&fixture("cloud_issue_updated_status_zulip.json"))
            .await
            .unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("acme").await.into_iter().next()
    })
    .await;
    assert_eq!(task["title"], "Fix That");
    assert_eq!(
        task["status"],
        json!({"category": "in_progress", "name": "In Progress"})
    );
    assert_eq!(task["external"][0]["provider"], "jira");
    assert_eq!(task["external"][0]["external_id"], "10000");
    assert!(
        task["external"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/browse/TEST-1")
    );
    let id = task["id"].as_str().unwrap().to_owned();
    let (s, one) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(s, 200);
    // The list adds the stored sync state to the task as `GET /api/tasks/{id}` shows it.
    let mut listed = task.clone();
    assert_eq!(
        listed.as_object_mut().unwrap().remove("sync_state"),
        Some(json!("in_sync"))
    );
    assert_eq!(one, listed);

    // Bad lookups.
    let (s, v) = api.get("/api/tasks").await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
    for bad in [uuid::Uuid::now_v7().to_string(), "nope".to_owned()] {
        let (s, v) = api.get(&format!("/api/tasks/{bad}")).await;
        assert_eq!((s, error_code(&v)), (404, "not_found"));
        let (s, _) = api.get(&format!("/api/tasks/{bad}/ledger")).await;
        assert_eq!(s, 404);
        let (s, _) = api
            .patch(
                &format!("/api/tasks/{bad}"),
                &json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"title": "x"}}),
            )
            .await;
        assert_eq!(s, 404);
    }
    // Bad PATCH bodies: 400, and the task is unchanged.
    let path = format!("/api/tasks/{id}");
    for body in [
        json!({"actor": {"kind": "human", "id": "u1"}, "fields": {}}),
        json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"colour": "red"}}),
        json!({"actor": {"kind": "robot", "id": "u1"}, "fields": {"title": "x"}}),
        json!({"actor": {"kind": "human", "id": ""}, "fields": {"title": "x"}}),
        json!({"actor": {"kind": "agent", "id": "agt_1"}, "fields": {"title": "x"}}),
        json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"due_date": "31/12/2026"}}),
        json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"status": {}}}),
        json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"priority": {"level": "urgent"}}}),
        json!({"fields": {"title": "x"}}),
    ] {
        let (s, v) = api.patch(&path, &body).await;
        assert_eq!(s, 400, "{body} → {v}");
        assert_eq!(error_code(&v), "bad_request");
    }
    let r = api
        .http
        .patch(api.url(&path))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, after) = api.get(&path).await;
    assert_eq!(after, listed, "a refused PATCH changed the task");
    let (_, ledger_before) = api.get(&format!("{path}/ledger")).await;
    let n_before = ledger_before["entries"].as_array().unwrap().len();
    assert!(n_before > 0);

    // A good PATCH by an agent acting for a person: 202, ledger entry, push, echo, no loop.
    let (s, v) = api
        .patch(
            &path,
            &json!({
                "actor": {"kind": "agent", "id": "agt_7", "display_name": "Planner",
                          "on_behalf_of": {"kind": "human", "id": "usr_1"}},
                "fields": {"title": "Fix That properly", "due_date": "2026-12-24"}
            }),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["push_queued"], true);
    eventually("the push to reach Jira", || async {
        let issue = jira.issue("10000")?;
        (issue["fields"]["summary"] == "Fix That properly"
            && issue["fields"]["duedate"] == "2026-12-24")
            .then_some(())
    })
    .await;
    let (_, t) = api.get(&path).await;
    assert_eq!(t["title"], "Fix That properly");
    assert_eq!(t["due_date"], "2026-12-24");
    let (s, ledger) = api.get(&format!("{path}/ledger")).await;
    assert_eq!(s, 200);
    let entries = ledger["entries"].as_array().unwrap();
    assert!(entries.len() > n_before);
    let mine: Vec<&Value> = entries
        .iter()
        .filter(|e| e["actor"]["id"] == "agt_7")
        .collect();
    assert_eq!(mine.len(), 2, "{entries:?}");
    let title = mine.iter().find(|e| e["field"] == "title").unwrap();
    assert_eq!(title["before"], "Fix That");
    assert_eq!(title["after"], "Fix That properly");
    assert_eq!(title["actor"]["on_behalf_of"][0]["id"], "usr_1");
    assert_eq!(title["cause"]["kind"], "internal_action");
    let idx: Vec<u64> = entries
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert!(
        idx.windows(2).all(|w| w[0] < w[1]),
        "not oldest first: {idx:?}"
    );
    // The echo arrives and settles: no further pushes or deliveries.
    eventually("the echo to be processed", || async {
        let ev = api.events("?workspace_id=acme").await;
        (ev.len() >= 2 && ev.iter().all(|e| e["state"] == "done")).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let (reqs, dels) = (jira.requests().len(), jira.deliveries());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        jira.requests().len(),
        reqs,
        "pushes continued: an echo loop"
    );
    assert_eq!(jira.deliveries(), dels, "webhooks continued: an echo loop");
    server.shutdown().await;
}

#[tokio::test]
async fn events_list_filters_and_replay() {
    let (server, api, _jira, id, url) = setup().await;
    // A verified body that cannot be parsed is stored as failed (200, so Jira stops retrying).
    let body = b"this is not json".to_vec();
    let r = api
        .http
        .post(&url)
        .header("x-hub-signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let failed = api.events("?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("JSON"),
        "{failed:?}"
    );
    assert_eq!(failed[0]["integration_id"], id.as_str());
    assert!(api.events("?status=done").await.is_empty());
    let (s, v) = api.get("/api/events?status=bogus").await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
    let (s, v) = api
        .get(&format!(
            "/api/events?integration_id={}",
            uuid::Uuid::now_v7()
        ))
        .await;
    assert_eq!((s, error_code(&v)), (404, "not_found"));
    // Replay: unknown → 404; failed → 202 and pending again (then processed, failing again).
    let (s, _) = api
        .post(
            &format!("/api/events/{}/replay", uuid::Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 404);
    let ev = failed[0]["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .post(&format!("/api/events/{ev}/replay"), &json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["state"], "pending");
    let again = eventually("the replayed event to be processed", || async {
        api.events("?status=failed")
            .await
            .into_iter()
            .find(|e| e["id"] == ev.as_str() && e["attempts"].as_u64() == Some(1))
    })
    .await;
    assert!(again["last_error"].as_str().is_some());
    // A done event cannot be replayed: 409.
    let good = fixture("cloud_issue_updated_status_zulip.json");
    let r = api
        .http
        .post(&url)
        .header("x-hub-signature", sign(&good))
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done = eventually("a done event", || async {
        api.events("?status=done").await.into_iter().next()
    })
    .await;
    let (s, v) = api
        .post(
            &format!("/api/events/{}/replay", done["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"));
    server.shutdown().await;
}

#[tokio::test]
async fn ledger_checkpoint_export_and_proofs_verify_offline() {
    let (server, api, jira, _id, _) = setup().await;
    for f in [
        "cloud_issue_created_kan22.json",
        "cloud_issue_updated_description_kan22.json",
    ] {
        assert_eq!(jira.deliver(&fixture(f)).await.unwrap(), 200);
    }
    eventually("events processed", || async {
        let ev = api.events("?workspace_id=acme").await;
        (ev.len() == 2 && ev.iter().all(|e| e["state"] == "done")).then_some(())
    })
    .await;
    let (s, keys) = api.get_text("/api/ledger/acme/keys").await;
    assert_eq!(s, 200);
    let trusted = TrustedKeys::parse(&keys).unwrap();
    let (s, note) = api.get_text("/api/ledger/acme/checkpoint").await;
    assert_eq!(s, 200);
    let cp = trusted.verify(&note).unwrap();
    assert_eq!(cp.origin, "ordonis/ws/acme");
    assert!(cp.size >= 2, "{cp:?}");
    let (s, ex) = api.get("/api/ledger/acme/export").await;
    assert_eq!(s, 200);
    assert_eq!(ex["verifier_keys"].as_str().unwrap(), keys);
    let excp = trusted.verify(ex["checkpoint"].as_str().unwrap()).unwrap();
    let report = verify_export(
        std::io::Cursor::new(ex["entries"].as_str().unwrap().as_bytes()),
        &excp,
        &ExportCheck::default(),
    )
    .unwrap();
    assert_eq!(report.size, excp.size);
    // A tampered export fails.
    let tampered = ex["entries"]
        .as_str()
        .unwrap()
        .replacen("Add back", "Add BACK", 1);
    assert!(
        verify_export(
            std::io::Cursor::new(tampered.as_bytes()),
            &excp,
            &ExportCheck::default()
        )
        .is_err()
    );
    // Every entry has a receipt that verifies.
    for i in 0..excp.size {
        let (s, p) = api.get(&format!("/api/ledger/acme/proof/{i}")).await;
        assert_eq!(s, 200, "{p}");
        let receipt = Receipt::parse(p["receipt"].as_str().unwrap()).unwrap();
        receipt
            .verify(p["entry"].as_str().unwrap().as_bytes(), &trusted)
            .unwrap();
    }
    let (s, _) = api
        .get(&format!("/api/ledger/acme/proof/{}", excp.size + 5))
        .await;
    assert_eq!(s, 404);
    let (s, v) = api.get("/api/ledger/acme/proof/minus-one").await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
    for path in [
        "checkpoint",
        "export",
        "keys",
        "proof/0",
        "consistency?from=1&to=1",
    ] {
        let (s, _) = api.get_text(&format!("/api/ledger/nobody/{path}")).await;
        assert_eq!(s, 404, "{path}");
    }

    // A witness pinned `cp`; the log grows; the later checkpoint extends it, as the served
    // consistency proof shows, and a proof for other sizes does not.
    assert_eq!(
        jira.deliver(&fixture("cloud_issue_updated_status_zulip.json"))
            .await
            .unwrap(),
        200
    );
    let later = eventually("the log grows", || async {
        let (_, note) = api.get_text("/api/ledger/acme/checkpoint").await;
        let later = trusted.verify(&note).ok()?;
        (later.size > cp.size).then_some(later)
    })
    .await;
    let (s, proof) = api
        .get_text(&format!(
            "/api/ledger/acme/consistency?from={}&to={}",
            cp.size, later.size
        ))
        .await;
    assert_eq!(s, 200, "{proof}");
    let proof = ordonis_core::vera::export::parse_proof(&proof).unwrap();
    ordonis_core::vera::check_consistency(&cp, &later, &proof).unwrap();
    let (_, other) = api
        .get_text(&format!(
            "/api/ledger/acme/consistency?from=1&to={}",
            later.size
        ))
        .await;
    let other = ordonis_core::vera::export::parse_proof(&other).unwrap();
    if cp.size != 1 {
        assert!(ordonis_core::vera::check_consistency(&cp, &later, &other).is_err());
    }
    for bad in [
        "from=0&to=1",
        "from=2&to=1",
        "from=1&to=999999",
        "from=x&to=1",
    ] {
        let (s, _) = api
            .get_text(&format!("/api/ledger/acme/consistency?{bad}"))
            .await;
        assert_eq!(s, 400, "{bad}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn query_string_errors_use_the_error_envelope() {
    let (server, api, _jira, _id, _) = setup().await;
    for path in [
        "/api/events?limit=abc",
        "/api/events?limit=-1",
        "/api/tasks?workspace_id=acme&workspace_id=other",
        "/api/integrations?workspace_id=acme&workspace_id=other",
    ] {
        let r = api
            .http
            .get(api.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(error_code(&v), "bad_request", "{path}: {v}");
        assert!(
            !v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{path}: {v}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_api_paths_need_the_token_before_404() {
    let server = start().await;
    let api = Api::new(&server);
    for path in ["/api", "/api/", "/api/nope", "/api/tasks/x/nope"] {
        for auth in [None, Some("Bearer wrong-token")] {
            let mut rb = api.http.get(api.url(path));
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path} with {auth:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(error_code(&v), "unauthenticated");
        }
        let (s, v) = api.get(path).await;
        assert_eq!((s, error_code(&v)), (404, "not_found"), "{path}");
    }
    // Outside /api an unknown path is simply 404.
    let r = api.http.get(api.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    server.shutdown().await;
}

/// A task from the fake Jira (the fixture's issue 10000), once synced.
async fn synced_task(api: &Api, jira: &FakeJira) -> String {
    assert_eq!(
        jira.deliver(&fixture("cloud_issue_updated_status_zulip.json"))
            .await
            .unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("acme").await.into_iter().next()
    })
    .await;
    task["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn actor_id_and_display_name_have_length_limits() {
    let (server, api, jira, _id, _) = setup().await;
    let id = synced_task(&api, &jira).await;
    let long = "x".repeat(257);
    for (actor, what) in [
        (json!({"kind": "human", "id": long}), "actor.id"),
        (
            json!({"kind": "human", "id": "u1", "display_name": long}),
            "actor.display_name",
        ),
    ] {
        let (s, v) = api
            .patch(
                &format!("/api/tasks/{id}"),
                &json!({"actor": actor, "fields": {"title": "x"}}),
            )
            .await;
        assert_eq!((s, error_code(&v)), (400, "bad_request"), "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(what) && msg.contains("256"), "{msg}");
    }
    // 256 characters (multi-byte ones too) are accepted.
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "é".repeat(256), "display_name": "x".repeat(256)},
                    "fields": {"title": "Within limits"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    server.shutdown().await;
}

#[tokio::test]
async fn patching_a_deleted_task_is_a_conflict() {
    let (server, api, jira, _id, _) = setup().await;
    let id = synced_task(&api, &jira).await;
    let mut deleted: Value =
        serde_json::from_slice(&fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    deleted["webhookEvent"] = json!("jira:issue_deleted");
    deleted["timestamp"] = json!(deleted["timestamp"].as_i64().unwrap() + 60_000);
    assert_eq!(
        jira.deliver(&serde_json::to_vec(&deleted).unwrap())
            .await
            .unwrap(),
        200
    );
    eventually("the tombstone", || async {
        let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
        (t["deleted"] == json!(true)).then_some(())
    })
    .await;
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "u1"}, "fields": {"title": "x"}}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("deleted"),
        "{v}"
    );
    server.shutdown().await;
}

/// A Jira integration in `ws` whose site is down (nothing listens on port 9), with the
/// KAN-22 task delivered to it and its title changed: the push fails. Returns the task id.
async fn push_to_a_site_that_is_down(api: &Api, ws: &str) -> String {
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({
                "workspace_id": ws,
                "provider": "jira",
                "base_url": "http://127.0.0.1:9",
                "auth": {"type": "basic", "email": "bot@example.com", "api_token": "very-secret-api-token"},
                "webhook_secrets": [SECRET],
                "scope": {"jql": "project = HO"},
                "backfill": false,
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["webhook_url"].as_str().unwrap().to_owned();
    // Without a description: an issue created with one is read from the (down) site's v3
    // API, and this task must exist without any call to it.
    let mut created: Value =
        serde_json::from_slice(&fixture("cloud_issue_created_kan22.json")).unwrap();
    created["issue"]["fields"]["description"] = Value::Null;
    if let Some(items) = created["changelog"]["items"].as_array_mut() {
        items.retain(|i| i["field"] != "description");
    }
    let body = serde_json::to_vec(&created).unwrap();
    let r = api
        .http
        .post(&url)
        .header("x-hub-signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let task = eventually("the task", || async {
        api.tasks(ws).await.into_iter().next()
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "ana"}, "fields": {"title": "Pushed while down"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    id
}

async fn ui_cookie(api: &Api) -> String {
    let login = api
        .http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}"))
        .send()
        .await
        .unwrap();
    login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn ui_page(api: &Api, cookie: &str, path: &str) -> String {
    api.http
        .get(api.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The outbox was visible only as `/metrics` counters. `GET /api/pushes` lists pushes (state,
/// attempts, last error, the fields, the task), and the UI's outbox shows each with its next
/// attempt time: a failing push is retried on the default schedule, which spans a day.
#[tokio::test]
async fn pushes_are_listed_with_their_next_attempt() {
    let server = start().await;
    let api = Api::new(&server);
    let id = push_to_a_site_that_is_down(&api, "down").await;
    let push = eventually("the retried push", || async {
        let (s, v) = api.get("/api/pushes?workspace_id=down&state=pending").await;
        assert_eq!(s, 200, "{v}");
        v["pushes"]
            .as_array()?
            .iter()
            .find(|p| p["attempts"].as_u64() >= Some(1))
            .cloned()
    })
    .await;
    assert_eq!(push["task_id"], id.as_str());
    assert!(
        push["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach Jira"),
        "{push}"
    );
    assert_eq!(push["task"]["title"], "Pushed while down");
    assert!(
        push["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == "title" && f["value"] == "Pushed while down"),
        "{push}"
    );
    // The next attempt is scheduled with backoff (10 s at least), not now.
    let next = time::OffsetDateTime::parse(
        push["next_attempt_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(next > time::OffsetDateTime::now_utc(), "{push}");
    // Filters: another state, another workspace, a bad state.
    let (_, v) = api.get("/api/pushes?workspace_id=down&state=done").await;
    assert_eq!(v["pushes"], json!([]));
    let (_, v) = api.get("/api/pushes?workspace_id=elsewhere").await;
    assert_eq!(v["pushes"], json!([]));
    let (s, v) = api.get("/api/pushes?state=bogus").await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"));
    // The UI's outbox: the row and its next attempt time; a pending row has no replay.
    let cookie = ui_cookie(&api).await;
    let page = ui_page(&api, &cookie, "/ui/pushes?workspace_id=down").await;
    assert!(
        page.contains(&format!(
            "datetime=\"{}\"",
            push["next_attempt_at"].as_str().unwrap()
        )),
        "no next attempt time: {page}"
    );
    assert!(page.contains("Pushed while down"), "{page}");
    assert!(page.contains("retried with backoff for 24 h"), "{page}");
    assert!(!page.contains("/replay"), "{page}");
    // The task page after that save says the push is failing instead of refreshing forever.
    let r = api
        .http
        .get(api.url(&format!("/ui/tasks/{id}?saved=title:applied&queued=1")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("refresh").is_none(), "still refreshing");
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"push-failing\""), "{page}");
    assert!(page.contains("cannot reach Jira"), "{page}");
    server.shutdown().await;
}

/// A push that exhausted its retries is dead; `POST /api/pushes/{id}/replay` (and the UI's
/// replay button) puts it back to pending.
#[tokio::test]
async fn dead_pushes_are_replayed() {
    let server = common::start_on(module_path!(), |c| {
        c.retry = ordonis_server::config::RetryArgs {
            retry_for_hours: 0.0001,
            max_delay: std::time::Duration::from_millis(50),
        };
    })
    .await;
    let api = Api::new(&server);
    let id = push_to_a_site_that_is_down(&api, "down").await;
    let push = eventually("the dead push", || async {
        let (_, v) = api.get("/api/pushes?workspace_id=down&state=dead").await;
        v["pushes"].as_array()?.first().cloned()
    })
    .await;
    let pid = push["id"].as_str().unwrap().to_owned();
    assert!(push["attempts"].as_u64().unwrap() >= 2, "{push}");
    let cookie = ui_cookie(&api).await;
    let page = ui_page(&api, &cookie, "/ui/pushes?workspace_id=down&state=dead").await;
    assert!(page.contains(&format!("/ui/pushes/{pid}/replay")), "{page}");
    // Replay: unknown → 404; dead → 202 and pending; not failed or dead → 409.
    let (s, _) = api
        .post(
            &format!("/api/pushes/{}/replay", uuid::Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = api.post("/api/pushes/not-an-id/replay", &json!({})).await;
    assert_eq!((s, error_code(&v)), (404, "not_found"));
    let (s, v) = api
        .post(&format!("/api/pushes/{pid}/replay"), &json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["state"], "pending");
    let (s, v) = api
        .post(&format!("/api/pushes/{pid}/replay"), &json!({}))
        .await;
    if s != 202 {
        // Already claimed again or still pending: refused as not failed or dead.
        assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    }
    // It is retried again and, the site still down, dies again.
    eventually("the replayed push to die again", || async {
        let (_, v) = api.get("/api/pushes?workspace_id=down&state=dead").await;
        (v["pushes"].as_array()?.len() == 1).then_some(())
    })
    .await;
    // A comment whose push dies is shown `failed`, with the push's error.
    let (s, v) = api
        .post(
            &format!("/api/tasks/{id}/comments"),
            &json!({"actor": {"kind": "human", "id": "ana"}, "body": "Anyone there?"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let c = eventually("the comment's push to die", || async {
        let (_, v) = api.get(&format!("/api/tasks/{id}/comments")).await;
        let c = v["comments"][0].clone();
        (c["sync"]["state"] == "failed").then_some(c)
    })
    .await;
    assert!(
        c["sync"]["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{c}"
    );
    server.shutdown().await;
}

/// Issue #31, point 9: `workspace_id` and `integration_id` together match only rows of both,
/// on every list that takes both (`/api/events`, `/api/pushes`, `/ui/events`, `/ui/pushes`):
/// a workspace with another workspace's integration lists nothing.
#[tokio::test]
async fn workspace_and_integration_filters_are_conjunctive() {
    let server = start().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (_acme, _) = api.jira_integration("acme", &jira).await;
    // Workspace "other": an inbox event and a push, both of its own integration.
    push_to_a_site_that_is_down(&api, "other").await;
    let push = eventually("the push", || async {
        let (s, v) = api.get("/api/pushes?workspace_id=other").await;
        assert_eq!(s, 200, "{v}");
        v["pushes"].as_array()?.first().cloned()
    })
    .await;
    let theirs = push["integration_id"].as_str().unwrap().to_owned();
    let event = api.events(&format!("?integration_id={theirs}")).await;
    assert!(!event.is_empty());
    let event_id = event[0]["id"].as_str().unwrap().to_owned();
    let push_id = push["id"].as_str().unwrap().to_owned();
    // Each filter alone, and both when they agree, find the rows.
    assert_eq!(
        api.events(&format!("?workspace_id=other&integration_id={theirs}"))
            .await
            .len(),
        event.len()
    );
    // A workspace and another workspace's integration: nothing.
    assert_eq!(
        api.events(&format!("?workspace_id=acme&integration_id={theirs}"))
            .await,
        Vec::<Value>::new()
    );
    let (s, v) = api
        .get(&format!(
            "/api/pushes?workspace_id=acme&integration_id={theirs}"
        ))
        .await;
    assert_eq!((s, &v["pushes"]), (200, &json!([])));
    // The console's inbox and outbox, the same.
    let cookie = api.sign_in().await;
    for (page, row) in [
        ("/ui/events", format!("event-{event_id}")),
        ("/ui/pushes", format!("push-{push_id}")),
    ] {
        let agree = api
            .ui_page(
                &cookie,
                &format!("{page}?workspace_id=other&integration_id={theirs}"),
            )
            .await;
        assert!(agree.contains(&row), "{page}: {row} missing");
        let cross = api
            .ui_page(
                &cookie,
                &format!("{page}?workspace_id=acme&integration_id={theirs}"),
            )
            .await;
        assert!(!cross.contains(&row), "{page}: {row} listed under acme");
    }
    // The console's task list: a workspace's page filtered by another's integration.
    let task = format!("/ui/tasks/{}", push["task_id"].as_str().unwrap());
    let own = api
        .ui_page(
            &cookie,
            &format!("/ui/workspaces/other?integration={theirs}"),
        )
        .await;
    assert!(own.contains(&task), "{task} missing");
    let cross = api
        .ui_page(
            &cookie,
            &format!("/ui/workspaces/acme?integration={theirs}"),
        )
        .await;
    assert!(!cross.contains(&task), "{task} listed under acme");
    server.shutdown().await;
}

/// The conversation over HTTP: an agent comments for a person (202, its entry in the task's
/// ledger), the comment reaches Jira once with its attribution, a person's reply comes back
/// in `GET /api/tasks/{id}/comments`, and bad input is 400 / 404 / 409 with nothing stored.
#[tokio::test]
async fn comments_are_posted_listed_and_refused_with_reasons() {
    let (server, api, jira, _id, _) = setup().await;
    let id = synced_task(&api, &jira).await;
    // The issue the fixture names, as the site holds it (comments are posted to it).
    let fixture_issue: Value =
        serde_json::from_slice(&fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    jira.insert_issue(fixture_issue["issue"].clone());
    let agent = json!({"kind": "agent", "id": "agt_triage", "display_name": "Triage bot",
        "on_behalf_of": {"kind": "human", "id": "usr_alice", "display_name": "Alice Smith"}});
    let (s, v) = api
        .post(
            &format!("/api/tasks/{id}/comments"),
            &json!({"actor": agent, "body": "I can reproduce this."}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["push_queued"], json!(true));
    let cid = v["comment_id"].as_str().unwrap().to_owned();
    let idx = v["ledger_entries"][0].as_u64().unwrap();
    // Pushed once, with the attribution line; the echo confirms it.
    let listed = eventually("the comment confirmed", || async {
        let (_, v) = api.get(&format!("/api/tasks/{id}/comments")).await;
        (v["comments"][0]["sync"]["state"] == json!("confirmed")).then_some(v)
    })
    .await;
    let c = &listed["comments"][0];
    assert_eq!(c["id"], json!(cid));
    assert_eq!(c["source"], json!("collabhub"));
    assert_eq!(c["author"]["kind"], json!("agent"));
    assert_eq!(c["on_behalf_of"][0]["id"], json!("usr_alice"));
    assert_eq!(c["body"], json!("I can reproduce this."));
    let in_jira = jira.comments("10000");
    assert_eq!(in_jira.len(), 1);
    assert!(
        in_jira[0]["body"].to_string().contains(&format!(
            "Triage bot (agent) for Alice Smith · ledger entry {idx}"
        )),
        "{}",
        in_jira[0]["body"]
    );
    assert_eq!(c["external_id"], in_jira[0]["id"]);

    // A person's reply in Jira is listed after it, with its author.
    jira.comment_as("10000", "acc-bob", "Bob Jones", "Thanks, on it")
        .await;
    let listed = eventually("the reply", || async {
        let (_, v) = api.get(&format!("/api/tasks/{id}/comments")).await;
        (v["comments"].as_array().map(Vec::len) == Some(2)).then_some(v)
    })
    .await;
    let reply = &listed["comments"][1];
    assert_eq!(reply["source"], json!("jira"));
    assert_eq!(reply["author"]["display_name"], json!("Bob Jones"));
    assert_eq!(reply["sync"], Value::Null);
    let (_, ledger) = api.get(&format!("/api/tasks/{id}/ledger")).await;
    let ops: Vec<&str> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["op"].as_str().filter(|o| o.starts_with("comment_")))
        .collect();
    assert_eq!(
        ops,
        ["comment_add", "comment_add", "comment_add"],
        "{ledger}"
    );

    // Bad input.
    let human = json!({"kind": "human", "id": "u1"});
    for body in ["", " \n", "ring\u{7}"] {
        let (s, v) = api
            .post(
                &format!("/api/tasks/{id}/comments"),
                &json!({"actor": human, "body": body}),
            )
            .await;
        assert_eq!((s, error_code(&v)), (400, "bad_request"), "{body:?}: {v}");
    }
    let reply_id = reply["id"].as_str().unwrap();
    let (s, v) = api
        .patch(
            &format!("/api/comments/{reply_id}"),
            &json!({"actor": human, "body": "rewritten"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    let (s, v) = api
        .delete(
            &format!("/api/comments/{reply_id}"),
            &json!({"actor": human}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    let (s, _) = api
        .delete("/api/comments/not-a-uuid", &json!({"actor": human}))
        .await;
    assert_eq!(s, 404);

    // Our own: edited and deleted through the API; Jira follows.
    let (s, v) = api
        .patch(
            &format!("/api/comments/{cid}"),
            &json!({"actor": agent, "body": "I can reproduce this on Safari."}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (s, v) = api
        .delete(&format!("/api/comments/{cid}"), &json!({"actor": agent}))
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("the deletion in Jira", || async {
        (jira.comments("10000").len() == 1).then_some(())
    })
    .await;
    let (_, v) = api.get(&format!("/api/tasks/{id}/comments")).await;
    assert_eq!(v["comments"][0]["deleted"], json!(true));
    server.shutdown().await;
}

/// Agent sessions over HTTP: open (an agent for a person only), activities (idempotent by
/// id, 409 on a different content or a complete session), artifacts, state, the session's
/// view with where it shows in Jira, and the ledger as a long-polled change feed.
#[tokio::test]
async fn sessions_over_http_and_the_ledger_feed() {
    let (server, api, jira, _id, _) = setup().await;
    let id = synced_task(&api, &jira).await;
    let fixture_issue: Value =
        serde_json::from_slice(&fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    jira.insert_issue(fixture_issue["issue"].clone());
    let agent = json!({"kind": "agent", "id": "agt_triage", "display_name": "Triage bot",
        "on_behalf_of": {"kind": "human", "id": "usr_alice", "display_name": "Alice Smith"}});
    for bad in [
        json!({"kind": "human", "id": "usr_alice"}),
        json!({"kind": "agent", "id": "agt_x"}),
    ] {
        let (s, v) = api
            .post(&format!("/api/tasks/{id}/sessions"), &json!({"actor": bad}))
            .await;
        assert_eq!((s, error_code(&v)), (400, "bad_request"), "{v}");
    }
    let (s, v) = api
        .post(
            &format!("/api/tasks/{id}/sessions"),
            &json!({"actor": agent}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "active");
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let acts = format!("/api/sessions/{sid}/activities");

    let (s, first) = api
        .post(
            &acts,
            &json!({"id": "t1", "type": "thought", "body": "Reading the form code"}),
        )
        .await;
    assert_eq!(s, 202, "{first}");
    let (s, again) = api
        .post(
            &acts,
            &json!({"id": "t1", "type": "thought", "body": "Reading the form code"}),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["ledger_index"], first["ledger_index"]);
    let (s, v) = api
        .post(
            &acts,
            &json!({"id": "t1", "type": "thought", "body": "Something else"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    let (s, v) = api
        .post(&acts, &json!({"type": "musing", "body": "x"}))
        .await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"), "{v}");
    let (s, asked) = api
        .post(
            &acts,
            &json!({"type": "elicitation", "body": "Which browser?"}),
        )
        .await;
    assert_eq!(s, 202, "{asked}");
    assert_eq!(asked["state"], "awaiting_input");
    assert!(asked["comment_id"].is_string(), "{asked}");

    let arts = format!("/api/sessions/{sid}/artifacts");
    let (s, v) = api
        .post(
            &arts,
            &json!({"title": "PR", "url": "ftp://git.example.com/pr/1"}),
        )
        .await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"), "{v}");
    let (s, v) = api
        .post(
            &arts,
            &json!({"title": "Fix double submit", "url": "https://git.example.com/pr/412", "kind": "pull_request"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");

    // The session's view: activities from the ledger, its artifact, and the question posted
    // to Jira (confirmed once its echo came back).
    let view = eventually("the question confirmed in Jira", || async {
        let (_, v) = api.get(&format!("/api/sessions/{sid}")).await;
        let confirmed = v["external"]
            .as_array()?
            .iter()
            .any(|e| e["kind"] == "comment" && e["sync"]["state"] == "confirmed");
        confirmed.then_some(v)
    })
    .await;
    assert_eq!(view["state"], "awaiting_input");
    assert_eq!(view["on_behalf_of"][0]["id"], "usr_alice");
    let types: Vec<&str> = view["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["thought", "elicitation"]);
    assert_eq!(
        view["artifacts"][0]["url"],
        "https://git.example.com/pr/412"
    );
    let (_, listed) = api.get(&format!("/api/tasks/{id}/sessions")).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);

    // The feed, long-polled: it answers as soon as the next entry is committed.
    let (_, page) = api.get("/api/ledger/acme/entries?limit=1000").await;
    let last = page["last_index"].as_u64().unwrap();
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["op"] == "session_activity"
                && e["session"]["activity"][1]["type"] == "elicitation"),
        "{page}"
    );
    let (s, v) = api.get("/api/ledger/acme/entries?wait=soon").await;
    assert_eq!((s, error_code(&v)), (400, "bad_request"), "{v}");
    let started = std::time::Instant::now();
    let poll = {
        let api = Api::new(&server);
        tokio::spawn(async move {
            api.get(&format!("/api/ledger/acme/entries?after={last}&wait=20s"))
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = api
        .post(
            &acts,
            &json!({"type": "prompt", "body": "Safari 17",
            "actor": {"kind": "human", "id": "usr_alice"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let (s, woke) = poll.await.unwrap();
    assert_eq!(s, 200);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(
        woke["entries"][0]["index"].as_u64(),
        Some(last + 1),
        "{woke}"
    );
    assert_eq!(woke["entries"][0]["actor"]["id"], "usr_alice");

    // Done: no more of the agent's activities.
    let (s, v) = api
        .patch(
            &format!("/api/sessions/{sid}"),
            &json!({"state": "complete"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "complete");
    let (s, v) = api
        .post(&acts, &json!({"type": "thought", "body": "late"}))
        .await;
    assert_eq!((s, error_code(&v)), (409, "conflict"), "{v}");
    let (s, _) = api.get("/api/sessions/not-a-session").await;
    assert_eq!(s, 404);
    server.shutdown().await;
}

/// `POST /api/tasks` with a link, the people directory, an assignee by principal, and
/// `POST`/`DELETE /api/tasks/{id}/links`, with their bad input.
#[tokio::test]
async fn tasks_are_created_in_jira_linked_unlinked_and_assigned_by_principal() {
    let (server, api, jira, integration, _) = setup().await;
    jira.add_project("HO", "10000");
    jira.add_user("acc-bob", "Bob Jones", None, false);
    let alice = json!({"kind": "human", "id": "usr_alice", "display_name": "Alice Smith"});

    // A person files a task for Jira; the create's answer is lost once.
    jira.lose_next_create_answer(1);
    let (s, v) = api
        .post(
            "/api/tasks",
            &json!({
                "workspace_id": "acme", "actor": alice,
                "fields": {"title": "Filed from CollabHub"},
                "link": {"integration_id": integration, "project": "HO"},
            }),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["create_queued"], true);
    assert!(v["ledger_entries"].as_u64().unwrap() >= 1);
    let id = v["task_id"].as_str().unwrap().to_owned();
    let task = eventually("the issue is created", || async {
        let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
        (t["create"]["state"] == "created").then_some(t)
    })
    .await;
    let issue_id = task["external"][0]["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jira.issues_with_property("ordonis", &json!({"task_id": id}))
            .len(),
        1,
        "exactly one issue"
    );
    assert_eq!(
        api.tasks("acme").await.len(),
        1,
        "its webhook imported no second task"
    );

    // Bad creates.
    let (s, _) = api
        .post(
            "/api/tasks",
            &json!({"workspace_id": "acme", "actor": alice, "fields": {"title": "x"},
                    "link": {"integration_id": uuid::Uuid::now_v7().to_string()}}),
        )
        .await;
    assert_eq!(s, 404, "an unknown integration");
    let (s, _) = api
        .post(
            "/api/tasks",
            &json!({"workspace_id": "acme", "actor": alice, "fields": {"description": "no title"}}),
        )
        .await;
    assert_eq!(s, 400, "a create without a title");

    // The people directory: Bob's e-mail is hidden in Jira, so he is mapped by hand.
    let bob = json!({"kind": "human", "display_name": "Bob Jones", "emails": ["bob@example.com"],
                     "accounts": [{"integration_id": integration, "account_id": "acc-bob"}]});
    let (s, v) = api.put("/api/workspaces/acme/people/usr_bob", &bob).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.put("/api/workspaces/acme/people/usr_eve", &bob).await;
    assert_eq!(s, 409, "Bob's account is taken: {v}");
    assert!(v.to_string().contains("usr_bob"), "{v}");
    let two = json!({"display_name": "Two", "accounts": [
        {"integration_id": integration, "account_id": "a1"},
        {"integration_id": integration, "account_id": "a2"}]});
    let (s, _) = api.put("/api/workspaces/acme/people/usr_two", &two).await;
    assert_eq!(s, 400, "two accounts of one integration");
    let (s, v) = api.get("/api/workspaces/acme/people").await;
    assert_eq!(s, 200);
    let people = v["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{v}");
    assert_eq!(people[0]["principal"], "usr_bob");
    assert_eq!(people[0]["accounts"][0]["account_id"], "acc-bob");

    // Assigned by principal: Jira gets Bob's accountId; an unknown principal is refused.
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": alice, "fields": {"assignee": {"principal": "usr_bob"}}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("Jira has Bob as the assignee", || async {
        (jira.issue(&issue_id)?["fields"]["assignee"]["accountId"] == "acc-bob").then_some(())
    })
    .await;
    let (s, _) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": alice, "fields": {"assignee": {"principal": "usr_nobody"}}}),
        )
        .await;
    assert_eq!(s, 400);

    // Link and unlink: a second task cannot take the issue; once unlinked, it can.
    let (s, v) = api
        .post(
            "/api/tasks",
            &json!({"workspace_id": "acme", "actor": alice, "fields": {"title": "Local"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let other = v["task_id"].as_str().unwrap().to_owned();
    let link = json!({"actor": alice, "integration_id": integration, "external_id": issue_id});
    let (s, v) = api.post(&format!("/api/tasks/{other}/links"), &link).await;
    assert_eq!(s, 409, "{v}");
    assert!(v.to_string().contains(&id), "names the task: {v}");
    let (s, v) = api
        .delete(
            &format!("/api/tasks/{id}/links/{integration}"),
            &json!({"actor": alice}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["external"], json!([]));
    let (s, v) = api.post(&format!("/api/tasks/{other}/links"), &link).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["external"][0]["external_id"], issue_id.as_str());
    assert_eq!(v["title"], "Filed from CollabHub", "merged from Jira");
    // An issue outside the scope (project = HO) is a 400.
    jira.add_project("KAN", "10001");
    jira.insert_issue(json!({
        "id": "30001", "key": "KAN-9",
        "fields": {"summary": "Elsewhere", "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"}, "assignee": null, "duedate": null,
            "project": {"id": "10001", "key": "KAN"}, "issuetype": {"id": "10001", "name": "Task"}}
    }));
    let (s, v) = api
        .post(
            &format!("/api/tasks/{id}/links"),
            &json!({"actor": alice, "integration_id": integration, "external_id": "30001"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api.get(&format!("/api/tasks/{id}/ledger")).await;
    assert_eq!(s, 200);
    let ops: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["op"].as_str())
        .collect();
    assert!(ops.contains(&"link") && ops.contains(&"unlink"), "{ops:?}");
    server.shutdown().await;
}

/// `GET /api/tasks` pages: `limit` tasks at a time, `next_cursor` until the last page, every
/// task once in id order; filters narrow it, each task carries its `sync_state`; a bad
/// cursor, a cursor from other filters, a bad limit or filter are `400` in the error
/// envelope.
#[tokio::test]
async fn task_list_pages_with_a_cursor() {
    let server = start().await;
    let api = Api::new(&server);
    for i in 0..5 {
        let (s, v) = api
            .post(
                "/api/tasks",
                &json!({"workspace_id": "pages", "actor": {"kind": "human", "id": "usr_1"},
                        "fields": {"title": format!("Paged task {i}")}}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/api/tasks?workspace_id=pages&limit=2&q=paged".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (s, v) = api.get(&path).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        let tasks = v["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2, "{v}");
        for t in tasks {
            assert_eq!(t["sync_state"], "out_of_scope", "unlinked: {t}");
            seen.push(t["id"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "id order, no repeats");
    assert_eq!(seen.len(), 5);
    assert_eq!(
        api.tasks("pages").await.len(),
        5,
        "the helper walks every page"
    );
    assert_eq!(
        api.tasks_where("pages", "&q=TASK%203").await.len(),
        1,
        "search"
    );
    assert!(
        api.tasks_where("pages", "&sync_state=in_sync")
            .await
            .is_empty()
    );

    let (_, first) = api.get("/api/tasks?workspace_id=pages&limit=2").await;
    let c = first["next_cursor"].as_str().unwrap().to_owned();
    for path in [
        "/api/tasks?workspace_id=pages&cursor=not-a-cursor".to_owned(),
        format!("/api/tasks?workspace_id=pages&limit=2&status=Done&cursor={c}"),
        format!("/api/tasks?workspace_id=pages&limit=2&sort=updated&cursor={c}"),
        "/api/tasks?workspace_id=pages&limit=1001".to_owned(),
        "/api/tasks?workspace_id=pages&limit=0".to_owned(),
        "/api/tasks?workspace_id=pages&sync_state=happy".to_owned(),
        "/api/tasks?workspace_id=pages&updated_since=yesterday".to_owned(),
        "/api/tasks?workspace_id=pages&integration=nope".to_owned(),
    ] {
        let (s, v) = api.get(&path).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert!(v["error"]["message"].is_string(), "{path}: {v}");
    }
    let (s, v) = api
        .get(&format!("/api/tasks?workspace_id=pages&limit=2&cursor={c}"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 2);
    server.shutdown().await;
}
