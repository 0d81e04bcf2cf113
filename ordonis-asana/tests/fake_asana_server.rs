//! The testkit's fake Asana (`ordonis_fakes::asana`), checked on its own: auth, the
//! handshake it requires, pagination, and the signed compact events it sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ordonis_fakes::asana::{FakeAsana, sign};
use serde_json::{Value, json};

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A webhook target that echoes the handshake when `echo` is set and records deliveries.
async fn target(echo: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |State(seen): State<Seen>, headers: HeaderMap, body: Bytes| async move {
                    let secret = headers.get("x-hook-secret").cloned();
                    seen.lock().unwrap().push((headers, body));
                    match secret {
                        Some(s) if echo => (StatusCode::OK, [("x-hook-secret", s)]).into_response(),
                        Some(_) => StatusCode::OK.into_response(),
                        None => StatusCode::NO_CONTENT.into_response(),
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn create(fake: &FakeAsana, target: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/webhooks", fake.base_url()))
        .bearer_auth(token)
        .json(&json!({"data": {"resource": "1", "target": target}}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_is_required_and_events_are_signed() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let (silent, _) = target(false).await;
    let (echoing, seen) = target(true).await;

    // No token, wrong token: 401.
    assert_eq!(create(&fake, &echoing, "nope").await.status(), 401);
    // A target that does not echo the secret gets no webhook.
    assert_eq!(create(&fake, &silent, "tok").await.status(), 400);
    assert!(fake.webhooks().is_empty());
    // One that echoes it does, and the answer carries the same secret.
    let r = create(&fake, &echoing, "tok").await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let hooks = fake.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(body["X-Hook-Secret"], hooks[0].secret.as_str());
    assert_eq!(
        seen.lock().unwrap()[0].0["x-hook-secret"],
        hooks[0].secret.as_str()
    );
    assert!(!format!("{:?}", hooks[0]).contains(&hooks[0].secret));

    // A change sends one signed compact event per changed field; no change sends nothing.
    let gid = fake.create_task("A");
    assert_eq!(
        fake.change_task(&gid, json!({"name": "B", "completed": true}))
            .await,
        Some(1)
    );
    assert_eq!(fake.change_task(&gid, json!({"name": "B"})).await, Some(0));
    assert_eq!(fake.change_task("404", json!({"name": "B"})).await, None);
    let (headers, body) = seen.lock().unwrap()[1].clone();
    assert_eq!(
        headers["x-hook-signature"],
        sign(&hooks[0].secret, &body).as_str()
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    let fields: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["completed", "name"]); // in the changes object's key order
    assert_eq!(v["events"][0]["resource"]["gid"], gid.as_str());
    assert!(
        v["events"][0].get("name").is_none(),
        "compact: no task fields"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_fields_and_webhook_pages() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let (field, opts) = fake.add_enum_field("Priority", &["High", "Low"]);
    let gid = fake.create_task("A");
    fake.set_echo(false);

    let r = http
        .put(format!("{base}/tasks/{gid}"))
        .bearer_auth("tok")
        .json(&json!({"data": {"name": "B", "assignee": "42", "custom_fields": {field.clone(): opts[1].clone()}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["data"]["name"], "B");
    assert_eq!(t["data"]["assignee"]["gid"], "42");
    assert_eq!(t["data"]["custom_fields"][0]["enum_value"]["name"], "Low");
    assert_eq!(fake.puts().len(), 1);
    // Without the data wrapper: 400, nothing recorded.
    let r = http
        .put(format!("{base}/tasks/{gid}"))
        .bearer_auth("tok")
        .json(&json!({"name": "C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(fake.task(&gid).unwrap()["name"], "B");
    let f: Value = http
        .get(format!("{base}/custom_fields/{field}"))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["data"]["enum_options"][0]["name"], "High");
    assert_eq!(
        http.get(format!("{base}/tasks/999"))
            .bearer_auth("tok")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Three webhooks, pages of two.
    let (echoing, _) = target(true).await;
    for _ in 0..3 {
        assert_eq!(create(&fake, &echoing, "tok").await.status(), 201);
    }
    let page = |offset: Option<&str>| {
        let mut url = format!("{base}/webhooks?workspace=1&limit=2");
        if let Some(o) = offset {
            url.push_str(&format!("&offset={o}"));
        }
        let http = http.clone();
        async move {
            http.get(url)
                .bearer_auth("tok")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let p1 = page(None).await;
    assert_eq!(p1["data"].as_array().unwrap().len(), 2);
    let next = p1["next_page"]["offset"].as_str().unwrap().to_owned();
    let p2 = page(Some(&next)).await;
    assert_eq!(p2["data"].as_array().unwrap().len(), 1);
    assert!(p2["next_page"].is_null());
    let gid0 = fake.webhooks()[0].gid.clone();
    let del = |g: String| {
        let http = http.clone();
        let base = base.clone();
        async move {
            http.delete(format!("{base}/webhooks/{g}"))
                .bearer_auth("tok")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(del(gid0.clone()).await, 200);
    assert_eq!(del(gid0).await, 404);
    assert_eq!(fake.webhooks().len(), 2);
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).bearer_auth("tok").send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The repair loop's endpoints are as strict as Asana's: compact records unless
/// `opt_fields`, limits of 1–100, opaque offsets, `modified_since` only on `/tasks`, a 412
/// with a fresh token, events only of the project's own tasks, and project-scoped,
/// filtered deliveries that can be dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_and_events_are_strict() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let http = reqwest::Client::new();
    let base = fake.base_url();
    let (p, q) = (fake.add_project("P"), fake.add_project("Q"));
    let tasks: Vec<String> = (0..3)
        .map(|i| fake.seed_task_in(&p, &format!("t{i}")))
        .collect();
    fake.seed_task_in(&q, "other");

    let (s, v) = get(&http, format!("{base}/tasks?project={p}&limit=2")).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["data"][0].get("notes").is_none(), "compact: {v}");
    assert_eq!(v["data"][0]["name"], "t0");
    let next = v["next_page"]["offset"].as_str().unwrap().to_owned();
    assert!(v["next_page"]["path"].as_str().unwrap().contains(&next));
    let (_, v) = get(
        &http,
        format!("{base}/tasks?project={p}&limit=2&offset={next}&opt_fields=notes,modified_at"),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["data"][0]["notes"].is_string() && v["next_page"].is_null());
    for bad in [
        "limit=0",
        "limit=101",
        "limit=2&offset=nope",
        "modified_since=yesterday",
    ] {
        let (s, _) = get(&http, format!("{base}/tasks?project={p}&{bad}")).await;
        assert_eq!(s, 400, "{bad}");
    }
    assert_eq!(get(&http, format!("{base}/tasks")).await.0, 400);
    assert_eq!(get(&http, format!("{base}/tasks?project=1")).await.0, 404);

    // modified_since filters /tasks, and is not a parameter of /projects/{gid}/tasks.
    fake.advance_clock(std::time::Duration::from_secs(3600));
    let since = fake.now() - time::Duration::seconds(1);
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    fake.change_task_silently(&tasks[1], json!({"name": "new"}))
        .await;
    let (_, v) = get(
        &http,
        format!("{base}/tasks?project={p}&modified_since={since}"),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["gid"], tasks[1].as_str());
    let (_, v) = get(
        &http,
        format!("{base}/projects/{p}/tasks?modified_since={since}"),
    )
    .await;
    assert_eq!(v["data"].as_array().unwrap().len(), 3);

    // Events: 412 with a token, then only this project's events since it.
    let (s, v) = get(&http, format!("{base}/events?resource={p}")).await;
    assert_eq!(s, 412);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Sync token")
    );
    let token = v["sync"].as_str().unwrap().to_owned();
    fake.change_task_silently(&tasks[0], json!({"completed": true}))
        .await;
    let (s, _) = get(&http, format!("{base}/events?resource={q}&sync={token}")).await;
    assert_eq!(s, 412, "another project's token");
    let (s, v2) = get(&http, format!("{base}/events?resource={p}&sync={token}")).await;
    assert_eq!(s, 200);
    assert_eq!(v2["data"].as_array().unwrap().len(), 1);
    assert_eq!(v2["data"][0]["resource"]["gid"], tasks[0].as_str());
    assert_eq!(v2["has_more"], false);
    assert_ne!(v2["sync"], token.as_str());
    fake.expire_sync_tokens();
    let next = v2["sync"].as_str().unwrap();
    assert_eq!(
        get(&http, format!("{base}/events?resource={p}&sync={next}"))
            .await
            .0,
        412
    );

    // Deliveries go to the task's project's webhook, pass its filters, and can be dropped.
    let (url, seen) = target(true).await;
    let filters = json!([{"resource_type": "task", "action": "changed", "fields": ["name"]}]);
    for project in [&p, &q] {
        let r = http
            .post(format!("{base}/webhooks"))
            .bearer_auth("tok")
            .json(&json!({"data": {"resource": project, "target": url, "filters": filters}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let handshakes = seen.lock().unwrap().len();
    assert_eq!(
        fake.change_task(&tasks[2], json!({"name": "n"})).await,
        Some(1)
    );
    assert_eq!(
        fake.change_task(&tasks[2], json!({"notes": "x"})).await,
        Some(0)
    );
    fake.drop_next_deliveries(1);
    assert_eq!(
        fake.change_task(&tasks[2], json!({"name": "m"})).await,
        Some(0)
    );
    fake.set_deliveries_enabled(false);
    assert_eq!(
        fake.change_task(&tasks[2], json!({"name": "o"})).await,
        Some(0)
    );
    assert_eq!(seen.lock().unwrap().len(), handshakes + 1);
    let hook = &fake.webhooks()[0];
    let w = fake.webhook_state(&hook.gid).unwrap();
    assert!(
        w["last_success_at"].is_string() && w["last_failure_at"].is_null(),
        "{w}"
    );
    assert_eq!(fake.events_of(&p).len(), 6, "every change is in the stream");
}
