//! The integration life cycle through the admin API, on SQLite and on `MemoryStore`:
//! settings checked at creation, `PATCH` (secret rotation, pause), `DELETE` (disable) and
//! `POST …/handshake`, each change recorded in the workspace's ledger without its secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, SECRET, fixture};
use ordonis_fakes::asana::FakeAsana;
use ordonis_fakes::jira::FakeJira;
use serde_json::{Value, json};

/// Delivers the fixture signed with `secret`, as delivery `delivery`: the body names the
/// delivery too, as a real one differs from another (deduplication is on the signed body).
async fn deliver(api: &Api, url: &str, secret: &str, delivery: &str) -> u16 {
    let mut body: Value =
        serde_json::from_slice(&fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    body["test_delivery"] = json!(delivery);
    let body = serde_json::to_vec(&body).unwrap();
    api.http
        .post(url)
        .header("content-type", "application/json")
        .header("x-atlassian-webhook-identifier", delivery)
        .header("x-hub-signature", ordonis_fakes::jira::sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn delete(api: &Api, path: &str) -> (u16, Value) {
    let r = api
        .http
        .delete(api.url(path))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn life_cycle(module: &str) {
    let server = common::start_on(module, |_| {}).await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (id, url) = api.jira_integration("acme", &jira).await;
    let path = format!("/api/integrations/{id}");

    // Rotation: old and new both valid, then the new one alone.
    let (s, v) = api
        .patch(
            &path,
            &json!({"webhook_secrets": ["rotated-secret", SECRET]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "active");
    assert!(
        !v.to_string().contains("rotated-secret"),
        "never a secret: {v}"
    );
    assert_eq!(deliver(&api, &url, SECRET, "d-old").await, 200);
    assert_eq!(deliver(&api, &url, "rotated-secret", "d-new").await, 200);
    let (s, v) = api
        .patch(&path, &json!({"webhook_secrets": ["rotated-secret"]}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(deliver(&api, &url, SECRET, "d-old-2").await, 401);
    assert_eq!(deliver(&api, &url, "rotated-secret", "d-new-2").await, 200);

    // Bad changes: 400 saying what, 404 for an unknown integration.
    for (body, says) in [
        (json!({"webhook_secrets": []}), "webhook_secrets"),
        (json!({"unknown": 1}), "unknown"),
        (json!({"options": {"nope": true}}), "options"),
        (
            json!({"auth": {"type": "bearer", "token": "a\u{7}b"}}),
            "control",
        ),
        (
            json!({"field_policy": {"title": {"owner": "provider", "direction": "both", "x": 1}}}),
            "x",
        ),
    ] {
        let (s, v) = api.patch(&path, &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(says),
            "{body}: {v}"
        );
    }
    let (s, _) = api
        .patch(
            &format!("/api/integrations/{}", uuid::Uuid::now_v7()),
            &json!({"paused": true}),
        )
        .await;
    assert_eq!(s, 404);

    // Pause: deliveries are stored, not processed, until resumed.
    let settled = || async {
        api.events(&format!("?integration_id={id}&status=pending"))
            .await
            .is_empty()
            .then_some(())
    };
    common::eventually("the deliveries so far to be processed", settled).await;
    let (s, v) = api.patch(&path, &json!({"paused": true})).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("paused")), "{v}");
    assert_eq!(deliver(&api, &url, "rotated-secret", "d-paused").await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let pending = api
        .events(&format!("?integration_id={id}&status=pending"))
        .await;
    assert_eq!(pending.len(), 1, "waits while paused");
    let (s, _) = api.patch(&path, &json!({"paused": false})).await;
    assert_eq!(s, 200);
    common::eventually("the paused delivery to be processed", settled).await;

    // Every change is in the ledger, with who and what, never a secret.
    let (s, export) = api.get("/api/ledger/acme/export").await;
    assert_eq!(s, 200);
    let entries = export["entries"].as_str().unwrap_or("");
    assert!(entries.contains("configure"), "{entries}");
    assert!(entries.contains("admin-api"));
    assert!(entries.contains("webhook_secrets (2 valid)"));
    assert!(entries.contains("paused=true") && entries.contains("paused=false"));
    assert!(!entries.contains("rotated-secret") && !entries.contains(SECRET));

    // Disable: the webhook is unknown, the tasks and the ledger stay.
    let tasks = api.tasks("acme").await.len();
    assert!(tasks > 0);
    let (s, v) = delete(&api, &path).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("disabled")), "{v}");
    assert_eq!(deliver(&api, &url, "rotated-secret", "d-gone").await, 404);
    assert_eq!(api.tasks("acme").await.len(), tasks);
    let (s, v) = api.get("/api/ledger/acme/export").await;
    assert_eq!(s, 200);
    assert!(v["entries"].as_str().unwrap_or("").contains("disabled"));
    let (s, _) = api.patch(&path, &json!({"paused": false})).await;
    assert_eq!(s, 404, "a disabled integration cannot be changed");
    let (s, v) = api.get(&path).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("disabled")));

    // A Jira integration has no handshake to re-arm.
    let (s, _) = api.post(&format!("{path}/handshake"), &json!({})).await;
    assert_eq!(s, 404, "disabled");
    let (jira2, _) = api.jira_integration("acme", &jira).await;
    let (s, v) = api
        .post(&format!("/api/integrations/{jira2}/handshake"), &json!({}))
        .await;
    assert_eq!(s, 400, "{v}");
    server.shutdown().await;
}

async fn creation_is_checked(module: &str) {
    let server = common::start_on(module, |_| {}).await;
    let api = Api::new(&server);
    let asana = FakeAsana::start("asana-pat").await.unwrap();
    let base = asana.base_url();
    for (body, says) in [
        (
            json!({"workspace_id": "w", "provider": "asana", "base_url": base,
                   "auth": {"type": "basic", "email": "a@b.c", "api_token": "t"}}),
            "auth",
        ),
        (
            json!({"workspace_id": "w", "provider": "asana", "base_url": base,
                   "auth": {"type": "bearer", "token": "tok\nen"}}),
            "control",
        ),
        (
            json!({"workspace_id": "w", "provider": "asana", "base_url": base,
                   "auth": {"type": "bearer", "token": "t"}, "options": {"colour": "red"}}),
            "options",
        ),
        (
            json!({"workspace_id": "w", "provider": "asana", "base_url": base,
                   "auth": {"type": "bearer", "token": "t"},
                   "field_policy": {"title": {"owner": "host", "direction": "both", "extra": 1}}}),
            "extra",
        ),
    ] {
        let (s, v) = api.post("/api/integrations", &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap_or("").contains(says),
            "{body}: {v}"
        );
    }
    // Asana: the handshake is accepted once; re-armed through the API, once more.
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({"workspace_id": "w", "provider": "asana", "base_url": base,
                    "auth": {"type": "bearer", "token": "asana-pat"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["integration_id"].as_str().unwrap().to_owned();
    let url = v["webhook_url"].as_str().unwrap().to_owned();
    asana.register_webhook("111", &url).await.unwrap();
    assert!(
        asana.register_webhook("222", &url).await.is_err(),
        "only one handshake"
    );
    let (s, v) = api
        .post(&format!("/api/integrations/{id}/handshake"), &json!({}))
        .await;
    assert_eq!(s, 202, "{v}");
    asana.register_webhook("333", &url).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn sqlite_life_cycle() {
    life_cycle("sqlite").await;
}

#[tokio::test]
async fn memory_life_cycle() {
    life_cycle("memory").await;
}

#[tokio::test]
async fn sqlite_creation_is_checked() {
    creation_is_checked("sqlite").await;
}

#[tokio::test]
async fn memory_creation_is_checked() {
    creation_is_checked("memory").await;
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_owned()
}

/// The integration page: listed on the workspace page, shows its state, and pauses,
/// resumes and disables it (each recorded in the ledger).
#[tokio::test]
async fn integration_page_actions() {
    let server = common::start_on("sqlite", |_| {}).await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (id, url) = api.jira_integration("ui-int", &jira).await;
    let r = api
        .http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", common::TOKEN)]))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let get = |path: String| {
        let (http, cookie, u) = (api.http.clone(), cookie.clone(), api.url(&path));
        async move {
            let r = http.get(u).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let act = |action: &str| {
        let (http, cookie) = (api.http.clone(), cookie.clone());
        let u = api.url(&format!("/ui/integrations/{id}/{action}"));
        async move {
            let r = http.post(u).header("cookie", cookie).send().await.unwrap();
            r.status().as_u16()
        }
    };
    let (s, ws_page) = get("/ui/workspaces/ui-int".into()).await;
    assert_eq!(s, 200);
    assert!(
        ws_page.contains(&format!("/ui/integrations/{id}")),
        "{ws_page}"
    );
    let (s, p) = get(format!("/ui/integrations/{id}")).await;
    assert_eq!(s, 200);
    assert!(
        p.contains("<dd id=\"state\">active</dd>") && p.contains(&url),
        "{p}"
    );
    assert_eq!(act("pause").await, 303);
    let (_, v) = api.get(&format!("/api/integrations/{id}")).await;
    assert_eq!(v["state"], "paused");
    let (_, p) = get(format!("/ui/integrations/{id}")).await;
    assert!(p.contains("/resume") && !p.contains("/pause\""), "{p}");
    assert_eq!(act("resume").await, 303);
    assert_eq!(act("disable").await, 303);
    let (_, v) = api.get(&format!("/api/integrations/{id}")).await;
    assert_eq!(v["state"], "disabled");
    assert_eq!(act("bogus").await, 404);
    let (_, export) = api.get("/api/ledger/ui-int/export").await;
    let entries = export["entries"].as_str().unwrap_or("");
    assert!(
        entries.contains("paused=true") && entries.contains("disabled"),
        "{entries}"
    );
    server.shutdown().await;
}
