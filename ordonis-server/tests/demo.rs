//! The demo in-process on the fake sites of `ordonis-fakes`: the real fixtures arrive through
//! the signed webhook paths, and an edit of the Asana task is pushed, echoed back, and settles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Api, eventually};
use ordonis_server::demo;
use serde_json::json;

#[tokio::test]
async fn demo_fixtures_arrive_and_an_asana_edit_pushes_and_settles() {
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    let d = demo::setup(&server).await.unwrap();
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    let tasks = eventually("the demo tasks", || async {
        let t = api.tasks(demo::WORKSPACE).await;
        (t.len() == 3).then_some(t)
    })
    .await;
    let asana_task = tasks
        .iter()
        .find(|t| t["external"][0]["provider"] == "asana")
        .expect("the Asana task");
    assert_eq!(asana_task["title"], "Draft the launch announcement");
    assert_eq!(
        asana_task["external"][0]["external_id"],
        demo::ASANA_TASK_GID
    );
    let id = asana_task["id"].as_str().unwrap().to_owned();
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "usr_demo"}, "fields": {"title": "Announce the launch"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("the push to the fake Asana", || async {
        (d.asana.task(demo::ASANA_TASK_GID)?["name"] == "Announce the launch").then_some(())
    })
    .await;
    eventually("the echo processed", || async {
        let ev = api
            .events(&format!("?integration_id={}", d.asana_integration))
            .await;
        (ev.len() >= 2 && ev.iter().all(|e| e["state"] == "done")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (puts, dels) = (d.asana.puts().len(), d.asana.deliveries());
    assert_eq!(puts, 1, "{:?}", d.asana.puts());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (d.asana.puts().len(), d.asana.deliveries()),
        (puts, dels),
        "an echo loop"
    );
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Announce the launch");
    server.shutdown().await;
}

/// The demo's task links lead to its fakes, which serve them; the demo describes each fake
/// with the (fake) credentials its integration uses.
#[tokio::test]
async fn demo_task_links_are_served_by_the_fakes() {
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    let d = demo::setup(&server).await.unwrap();
    let tasks = eventually("the demo tasks", || async {
        let t = api.tasks(demo::WORKSPACE).await;
        (t.len() == 3).then_some(t)
    })
    .await;
    let http = reqwest::Client::new();
    for t in &tasks {
        let url = t["external"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("{t}"));
        let base = match t["external"][0]["provider"].as_str().unwrap() {
            "jira" => d.jira.base_url(),
            _ => d.asana.base_url(),
        };
        assert!(url.starts_with(&base), "{url} is not on the fake at {base}");
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let page = r.text().await.unwrap();
        assert!(page.contains(t["title"].as_str().unwrap()), "{url}: {page}");
    }
    let described = d.describe().join("\n");
    for needle in [
        d.jira.base_url(),
        d.asana.base_url(),
        demo::JIRA_TOKEN.to_owned(),
        demo::ASANA_TOKEN.to_owned(),
        d.jira_webhook_secret.clone(),
    ] {
        assert!(
            described.contains(&needle),
            "{needle} missing from {described}"
        );
    }
    server.shutdown().await;
}
