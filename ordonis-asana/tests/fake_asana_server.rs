//! The testkit's fake Asana (`ordonis_fakes::asana`), checked on its own: auth, the
//! handshake it requires, pagination, and the signed compact events it sends (task events,
//! and the story events of comments).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ordonis_fakes::asana::{API_USER, FakeAsana, FakeWebhook, HUMAN_USER, sign};
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

// ---------------------------------------------------------------------------------------
// Comment story events (`added`, `changed`, `removed` on a `comment_added` story).

/// A webhook on `resource` with these filters, to a fresh echoing target; its deliveries.
async fn hook_on(fake: &FakeAsana, resource: &str, filters: Value) -> (FakeWebhook, Seen) {
    let (url, seen) = target(true).await;
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks", fake.base_url()))
        .bearer_auth("tok")
        .json(&json!({"data": {"resource": resource, "target": url, "filters": filters}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook = fake
        .webhooks()
        .into_iter()
        .find(|h| h.target == url)
        .unwrap();
    (hook, seen)
}

/// The events delivered to a webhook so far (handshake left out), each batch checked to be
/// signed with the webhook's secret.
fn delivered(hook: &FakeWebhook, seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(h, _)| !h.contains_key("x-hook-secret"))
        .flat_map(|(h, body)| {
            assert_eq!(
                h["x-hook-signature"],
                sign(&hook.secret, body).as_str(),
                "unsigned or badly signed delivery"
            );
            let v: Value = serde_json::from_slice(body).unwrap();
            v["events"].as_array().unwrap().clone()
        })
        .collect()
}

/// The story events among `events`, as `(action, story gid)`.
fn story_actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["resource"]["resource_type"] == "story")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["resource"]["gid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A REST call to the fake with the token; status and JSON answer.
async fn call(fake: &FakeAsana, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{}{path}", fake.base_url()))
        .bearer_auth("tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The project's `GET /events` since `token`, as Asana pages them.
async fn events_since(fake: &FakeAsana, project: &str, token: &str) -> Vec<Value> {
    let (s, v) = get(
        &reqwest::Client::new(),
        format!("{}/events?resource={project}&sync={token}", fake.base_url()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    v["data"].as_array().unwrap().clone()
}

/// A fresh sync token for a project's events.
async fn sync_token(fake: &FakeAsana, project: &str) -> String {
    let (s, v) = get(
        &reqwest::Client::new(),
        format!("{}/events?resource={project}", fake.base_url()),
    )
    .await;
    assert_eq!(s, 412);
    v["sync"].as_str().unwrap().to_owned()
}

async fn settle(fake: &FakeAsana) {
    assert!(fake.echoes_sent(std::time::Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_comments_are_echoed_as_signed_story_events_and_recorded() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let p = fake.add_project("P");
    let task = fake.seed_task_in(&p, "Login fails");
    let (hook, seen) = hook_on(&fake, &p, json!([])).await;
    let token = sync_token(&fake, &p).await;

    // Added: the story on its parent task, by the token's user.
    let (s, v) = call(
        &fake,
        reqwest::Method::POST,
        &format!("/tasks/{task}/stories"),
        json!({"data": {"text": "Fixed in main."}}),
    )
    .await;
    assert_eq!(s, 201);
    let story = v["data"]["gid"].as_str().unwrap().to_owned();
    settle(&fake).await;
    let events = delivered(&hook, &seen);
    assert_eq!(events.len(), 1);
    let added = &events[0];
    assert_eq!(added["action"], "added");
    assert_eq!(
        added["resource"],
        json!({"gid": story, "resource_type": "story", "resource_subtype": "comment_added"})
    );
    assert_eq!(
        added["parent"],
        json!({"gid": task, "resource_type": "task", "resource_subtype": "default_task"})
    );
    assert_eq!(
        added["user"],
        json!({"gid": API_USER, "resource_type": "user"})
    );
    assert!(added["created_at"].is_string());
    assert!(added.get("change").is_none());
    assert!(added.get("text").is_none(), "compact: no story fields");

    // Changed: an edit of the text (no parent, as for every event but added/removed).
    let (s, _) = call(
        &fake,
        reqwest::Method::PUT,
        &format!("/stories/{story}"),
        json!({"data": {"text": "Fixed in main and 2.1."}}),
    )
    .await;
    assert_eq!(s, 200);
    settle(&fake).await;
    // Removed: the story taken off its task.
    let (s, _) = call(
        &fake,
        reqwest::Method::DELETE,
        &format!("/stories/{story}"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    settle(&fake).await;
    let events = delivered(&hook, &seen);
    assert_eq!(
        story_actions(&events),
        [
            ("added".to_owned(), story.clone()),
            ("changed".to_owned(), story.clone()),
            ("removed".to_owned(), story.clone()),
        ]
    );
    assert_eq!(
        events[1]["change"],
        json!({"field": "text", "action": "changed"})
    );
    assert!(events[1]["parent"].is_null());
    assert_eq!(events[2]["parent"]["gid"], task.as_str());
    assert!(events[2].get("change").is_none());

    // All three are in the project's event stream, for a reconcile that reads it.
    let stream = events_since(&fake, &p, &token).await;
    assert_eq!(story_actions(&stream), story_actions(&events));
    assert_eq!(fake.events_of(&p), events);

    // A post whose answer is lost made its story: its event is recorded and sent.
    fake.lose_next_story_answer(1);
    let (s, _) = call(
        &fake,
        reqwest::Method::POST,
        &format!("/tasks/{task}/stories"),
        json!({"data": {"html_text": "<body>made <strong>anyway</strong></body>"}}),
    )
    .await;
    assert_eq!(s, 504);
    settle(&fake).await;
    let made = fake.stories(&task)[0]["gid"].as_str().unwrap().to_owned();
    let events = delivered(&hook, &seen);
    assert_eq!(
        story_actions(&events)[3],
        ("added".to_owned(), made.clone())
    );
    assert_eq!(
        story_actions(&fake.events_of(&p))[3],
        ("added".to_owned(), made)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persons_comments_deliver_story_events_before_returning() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let p = fake.add_project("P");
    let task = fake.seed_task_in(&p, "Login fails");
    let (hook, seen) = hook_on(&fake, &p, json!([])).await;

    let story = fake
        .comment_as(&task, HUMAN_USER, "Greg", "Works now <3")
        .await;
    // Delivered already: nothing runs in the background.
    let events = delivered(&hook, &seen);
    assert_eq!(
        story_actions(&events),
        [("added".to_owned(), story.clone())]
    );
    assert_eq!(events[0]["user"]["gid"], HUMAN_USER);
    assert_eq!(events[0]["parent"]["gid"], task.as_str());
    let stored = &fake.stories(&task)[0];
    assert_eq!(stored["text"], "Works now <3");
    assert_eq!(stored["created_by"]["gid"], HUMAN_USER);

    // Only its author edits or deletes it; anyone else changes nothing and sends nothing.
    assert!(!fake.edit_comment_as(&story, API_USER, "hijacked").await);
    assert!(!fake.delete_comment_as(&story, API_USER).await);
    assert!(!fake.edit_comment_as("404", HUMAN_USER, "x").await);
    assert!(
        fake.edit_comment_as(&story, HUMAN_USER, "Works now & then")
            .await
    );
    let stored = &fake.stories(&task)[0];
    assert_eq!(stored["text"], "Works now & then");
    assert_eq!(stored["html_text"], "<body>Works now &amp; then</body>");
    assert_eq!(stored["is_edited"], true);
    assert!(fake.delete_comment_as(&story, HUMAN_USER).await);
    assert!(fake.stories(&task).is_empty());
    assert!(!fake.delete_comment_as(&story, HUMAN_USER).await);
    let events = delivered(&hook, &seen);
    assert_eq!(
        story_actions(&events),
        [
            ("added".to_owned(), story.clone()),
            ("changed".to_owned(), story.clone()),
            ("removed".to_owned(), story.clone()),
        ]
    );
    assert_eq!(events[1]["user"]["gid"], HUMAN_USER);
    assert_eq!(events[1]["change"]["field"], "text");
    assert_eq!(fake.events_of(&p), events);

    // add_comment_as is the same comment with no event at all (a dropped delivery), and
    // a system story sends none either.
    fake.add_comment_as(&task, HUMAN_USER, "Greg", "silent");
    fake.add_system_story(&task, "due_date_changed", "changed the due date");
    settle(&fake).await;
    assert_eq!(delivered(&hook, &seen).len(), 3);
    assert_eq!(fake.events_of(&p).len(), 3);
    assert_eq!(fake.stories(&task).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_events_follow_the_echo_and_drop_switches_and_the_filters() {
    let fake = FakeAsana::start("tok").await.unwrap();
    let (p, q) = (fake.add_project("P"), fake.add_project("Q"));
    let task = fake.seed_task_in(&p, "Login fails");
    let elsewhere = fake.seed_task_in(&q, "Other");
    let (all, all_seen) = hook_on(&fake, &p, json!([])).await;
    let (tasks_only, tasks_seen) = hook_on(&fake, &p, json!([{"resource_type": "task"}])).await;
    let (new_comments, new_seen) = hook_on(
        &fake,
        &p,
        json!([{"resource_type": "story", "resource_subtype": "comment_added", "action": "added"}]),
    )
    .await;
    let (edits, edits_seen) = hook_on(
        &fake,
        &p,
        json!([{"resource_type": "story", "action": "changed", "fields": ["text"]}]),
    )
    .await;

    // Filters: a task-only webhook hears no story event; the others hear theirs.
    let story = fake.comment_as(&task, HUMAN_USER, "Greg", "one").await;
    assert!(fake.edit_comment_as(&story, HUMAN_USER, "two").await);
    assert!(fake.delete_comment_as(&story, HUMAN_USER).await);
    let actions = |events: Vec<Value>| -> Vec<String> {
        story_actions(&events).into_iter().map(|(a, _)| a).collect()
    };
    assert_eq!(
        actions(delivered(&all, &all_seen)),
        ["added", "changed", "removed"]
    );
    assert!(delivered(&tasks_only, &tasks_seen).is_empty());
    assert_eq!(actions(delivered(&new_comments, &new_seen)), ["added"]);
    assert_eq!(actions(delivered(&edits, &edits_seen)), ["changed"]);
    // A comment on another project's task reaches none of P's webhooks nor its stream.
    fake.comment_as(&elsewhere, HUMAN_USER, "Greg", "elsewhere")
        .await;
    assert_eq!(delivered(&all, &all_seen).len(), 3);
    assert_eq!(fake.events_of(&p).len(), 3);
    assert_eq!(fake.events_of(&q).len(), 1);

    // Echoes off: an API comment is recorded but not delivered; a person's still is.
    fake.set_echo(false);
    let (s, v) = call(
        &fake,
        reqwest::Method::POST,
        &format!("/tasks/{task}/stories"),
        json!({"data": {"text": "quiet"}}),
    )
    .await;
    assert_eq!(s, 201);
    let quiet = v["data"]["gid"].as_str().unwrap().to_owned();
    settle(&fake).await;
    assert_eq!(delivered(&all, &all_seen).len(), 3);
    assert_eq!(
        story_actions(&fake.events_of(&p))[3],
        ("added".to_owned(), quiet)
    );
    let heard = fake.comment_as(&task, HUMAN_USER, "Greg", "heard").await;
    assert_eq!(
        story_actions(&delivered(&all, &all_seen))[3],
        ("added".to_owned(), heard.clone())
    );
    fake.set_echo(true);

    // Dropped deliveries and deliveries switched off: recorded, not sent.
    let before = delivered(&all, &all_seen).len();
    fake.drop_next_deliveries(2); // the batch to `all` and to `new_comments`
    fake.comment_as(&task, HUMAN_USER, "Greg", "dropped").await;
    assert_eq!(delivered(&all, &all_seen).len(), before);
    fake.set_deliveries_enabled(false);
    assert!(fake.edit_comment_as(&heard, HUMAN_USER, "off").await);
    let (s, _) = call(
        &fake,
        reqwest::Method::POST,
        &format!("/tasks/{task}/stories"),
        json!({"data": {"text": "off too"}}),
    )
    .await;
    assert_eq!(s, 201);
    settle(&fake).await;
    assert_eq!(delivered(&all, &all_seen).len(), before);
    fake.set_deliveries_enabled(true);
    let recorded: Vec<String> = story_actions(&fake.events_of(&p))
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        recorded,
        [
            "added", "changed", "removed", "added", "added", "added", "changed", "added"
        ]
    );
}
