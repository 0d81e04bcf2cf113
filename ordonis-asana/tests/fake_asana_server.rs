//! The testkit's fake Asana (`ordonis_testkit::fake_asana`), checked on its own: auth, the
//! handshake it requires, pagination, and the signed compact events it sends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ordonis_testkit::fake_asana::{FakeAsana, sign};
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
