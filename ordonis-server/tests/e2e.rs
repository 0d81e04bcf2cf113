//! End to end on SQLite and on PostgreSQL: signed Jira webhooks (the real fixtures) in, tasks
//! and ledger out, a PATCH out to the fake Jira and its echo back, with no loop; the ledger
//! verifies offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Api, eventually, fixture};
use ordonis_core::vera::{ExportCheck, TrustedKeys, verify_export};
use ordonis_fakes::jira::FakeJira;
use ordonis_server::{Config, Server};
use serde_json::{Value, json};

async fn round_trip(server: Server) {
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (integration, _) = api.jira_integration("e2e", &jira).await;

    // In: the real fixture payloads through the real signed webhook path.
    for f in [
        "cloud_issue_created_kan22.json",
        "cloud_issue_updated_description_kan22.json",
        "cloud_issue_updated_status_zulip.json",
    ] {
        assert_eq!(jira.deliver(&fixture(f)).await.unwrap(), 200, "{f}");
    }
    // Two tasks appear before every delivery is applied (the description update may still
    // be in flight): wait for all three.
    let tasks = eventually("two tasks, every delivery applied", || async {
        let ev = api.events(&format!("?integration_id={integration}")).await;
        let t = api.tasks("e2e").await;
        (ev.len() == 3 && ev.iter().all(|e| e["state"] == "done") && t.len() == 2).then_some(t)
    })
    .await;
    let kan = tasks
        .iter()
        .find(|t| t["external"][0]["external_id"] == "10021")
        .expect("KAN-22");
    assert_eq!(kan["title"], "Add back button to pages");
    assert!(
        kan["description"]
            .as_str()
            .unwrap()
            .contains("back button on the create pages as well")
    );
    assert_eq!(kan["assignee"]["display_name"], "Sirajudheen MK");
    assert_eq!(kan["priority"]["level"], "medium");
    let id = kan["id"].as_str().unwrap().to_owned();
    let (_, ledger) = api.get(&format!("/api/tasks/{id}/ledger")).await;
    let entries = ledger["entries"].as_array().unwrap().clone();
    assert!(
        entries
            .iter()
            .any(|e| e["field"] == "description" && e["cause"]["kind"] == "inbound_event"),
        "{entries:?}"
    );
    assert!(entries.iter().all(|e| e["actor"]["provider"] == "jira"));

    // Out: a person in CollabHub moves the task to Done; Jira gets the transition.
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "usr_42", "display_name": "Ada"},
                    "fields": {"status": {"category": "done", "name": "Done"}}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("Jira to be Done", || async {
        let issue = jira.issue("KAN-22")?;
        (issue["fields"]["status"]["name"] == "Done").then_some(())
    })
    .await;
    assert!(
        jira.requests()
            .iter()
            .any(|r| r == "POST /rest/api/3/issue/10021/transitions"),
        "{:?}",
        jira.requests()
    );
    // Back: the echo confirms the requested status.
    let ledger = eventually("the confirmation", || async {
        let (_, l) = api.get(&format!("/api/tasks/{id}/ledger")).await;
        let e = l["entries"].as_array().unwrap().clone();
        e.iter()
            .any(|x| x["field"] == "status" && x["outcome"] == "confirmed")
            .then_some(e)
    })
    .await;
    let requested = ledger
        .iter()
        .find(|x| x["field"] == "status" && x["outcome"] == "requested")
        .expect("a requested entry");
    assert_eq!(requested["actor"]["id"], "usr_42");
    assert_eq!(requested["after"]["name"], "Done");
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["status"], json!({"category": "done", "name": "Done"}));

    // A person in Jira changes the title: it flows in.
    assert_eq!(
        jira.update_issue(
            "KAN-22",
            &json!({"summary": "Back button everywhere"}),
            "acc-jira-1"
        )
        .await
        .unwrap(),
        200
    );
    eventually("the Jira title", || async {
        let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
        (t["title"] == "Back button everywhere").then_some(())
    })
    .await;

    // No loop: everything settles and stays settled.
    eventually("all events done", || async {
        let ev = api.events(&format!("?integration_id={integration}")).await;
        ev.iter().all(|e| e["state"] == "done").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (reqs, dels) = (jira.requests().len(), jira.deliveries());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        jira.requests().len(),
        reqs,
        "an echo loop: pushes continued"
    );
    assert_eq!(jira.deliveries(), dels, "an echo loop: webhooks continued");
    let metrics = api.metrics().await;
    assert!(
        metrics.contains("ordonis_outbox_rows{state=\"pending\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ordonis_inbox_rows{state=\"failed\"} 0"),
        "{metrics}"
    );
    assert!(
        api.metric("ordonis_push_duration_seconds_count").await >= 1.0,
        "the push was timed: {metrics}"
    );
    assert!(
        metrics.contains("ordonis_push_duration_seconds_bucket{le=\"0.25\"}"),
        "the push histogram keeps its buckets: {metrics}"
    );

    // The ledger verifies offline.
    let (_, ex) = api.get("/api/ledger/e2e/export").await;
    let trusted = TrustedKeys::parse(ex["verifier_keys"].as_str().unwrap()).unwrap();
    let cp = trusted.verify(ex["checkpoint"].as_str().unwrap()).unwrap();
    let report = verify_export(
        std::io::Cursor::new(ex["entries"].as_str().unwrap().as_bytes().to_vec()),
        &cp,
        &ExportCheck::default(),
    )
    .unwrap();
    assert_eq!(report.size, cp.size);
    assert!(cp.size as usize >= ledger.len());
    let _: Value = ex;
    server.shutdown().await;
}

#[tokio::test]
async fn sqlite_round_trip() {
    round_trip(common::start_sqlite().await).await;
}

#[tokio::test]
async fn postgres_round_trip() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let server = Server::start(&Config::for_tests(url)).await.unwrap();
    round_trip(server).await;
    common::drop_pg(&name).await;
}

#[tokio::test]
async fn postgres_requires_token_and_key() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let mut c = Config::for_tests(url.clone());
    c.secret_key = None;
    let err = Server::start(&c).await.unwrap_err().to_string();
    assert!(err.contains("ORDONIS_SECRET_KEY"), "{err}");
    // A separate worker process's engine on the same database drains what the server
    // (with no in-process workers) stored.
    let mut c = Config::for_tests(url);
    c.workers = 0;
    let server = Server::start(&c).await.unwrap();
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    api.jira_integration("scale", &jira).await;
    assert_eq!(
        jira.deliver(&fixture("cloud_issue_updated_status_zulip.json"))
            .await
            .unwrap(),
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        api.tasks("scale").await.is_empty(),
        "no worker should have run"
    );
    let store = ordonis_server::app::open_store(
        &ordonis_server::config::Backend::parse(&c.database_url).unwrap(),
    )
    .await
    .unwrap();
    let engine = ordonis_server::app::engine(
        store,
        c.secret_key.as_deref().unwrap(),
        &c.retry,
        None,
        c.max_provider_response_bytes,
        c.handshake_window,
        c.allow_any_provider_url,
    )
    .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let handles =
        ordonis_server::app::spawn_workers(&engine, 2, Duration::from_secs(60), &wake, &token);
    eventually("the remote workers", || async {
        (api.tasks("scale").await.len() == 1).then_some(())
    })
    .await;
    token.cancel();
    for h in handles {
        h.await.unwrap();
    }
    server.shutdown().await;
    common::drop_pg(&name).await;
}

use ordonis_fakes::asana::{self, FakeAsana};

async fn asana_round_trip(server: Server) {
    let api = Api::new(&server);
    let asana = FakeAsana::start("asana-pat").await.unwrap();
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({"workspace_id": "asana-ws", "provider": "asana", "base_url": asana.base_url(),
                    "auth": {"type": "bearer", "token": "asana-pat"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let url = v["webhook_url"].as_str().unwrap().to_owned();
    assert!(url.contains("/integrations/asana/"));
    // The handshake is answered with the echoed header, once.
    let gid = "1154849068499809";
    asana.register_webhook(gid, &url).await.unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(&url)
        .header("x-hook-secret", "attacker-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a second handshake must not replace the secret"
    );
    // A real compact event (the fixture), signed: the task is fetched and created.
    asana.insert_task(gid, "Write the launch post");
    let body = fixture_asana("captured_task_changed_2019_gelisam.json");
    let r = http
        .post(&url)
        .header("x-hook-signature", asana::sign("attacker-secret", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(asana.deliver_raw(&body).await, 1);
    let task = eventually("the Asana task", || async {
        api.tasks("asana-ws").await.into_iter().next()
    })
    .await;
    assert_eq!(task["title"], "Write the launch post");
    assert_eq!(task["external"][0]["provider"], "asana");
    assert_eq!(task["external"][0]["external_id"], gid);
    let id = task["id"].as_str().unwrap().to_owned();
    // Out and back.
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "usr_9"}, "fields": {"title": "Launch post, final"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("the push to Asana", || async {
        (asana.task(gid)?["name"] == "Launch post, final").then_some(())
    })
    .await;
    eventually("the echo processed", || async {
        let ev = api.events("?workspace_id=asana-ws").await;
        (ev.len() >= 2 && ev.iter().all(|e| e["state"] == "done")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (puts, dels) = (asana.puts().len(), asana.deliveries());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        (asana.puts().len(), asana.deliveries()),
        (puts, dels),
        "an echo loop"
    );
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Launch post, final");
    // A person in Asana completes it: it flows in.
    assert_eq!(
        asana.change_task(gid, json!({"completed": true})).await,
        Some(1)
    );
    eventually("the Asana completion", || async {
        let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
        (t["status"]["category"] == "done").then_some(())
    })
    .await;
    server.shutdown().await;
}

fn fixture_asana(name: &str) -> Vec<u8> {
    ordonis_fakes::fixtures::asana(name).to_vec()
}

#[tokio::test]
async fn sqlite_asana_round_trip() {
    asana_round_trip(common::start_sqlite().await).await;
}

#[tokio::test]
async fn postgres_asana_round_trip() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    asana_round_trip(Server::start(&Config::for_tests(url)).await.unwrap()).await;
    common::drop_pg(&name).await;
}
