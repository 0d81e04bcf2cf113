//! Whole-path status pushes over the testkit's FakeJira (real HTTP): the path is planned over
//! the issue's workflow (`POST /rest/api/3/workflows/preview`) before anything moves, and the
//! planned hops are registered as our echoes before the push starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::ctx;
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::{
    Actor, ApiAuth, Engine, Field, FieldPatch, FieldValue, IntegrationConfig, IntegrationId,
    IntegrationSecrets, Keyring, Ledger, NewIntegration, ObjectKey, Outcome, Provider,
    ProviderKind, PushOutcome, SecretKey, Status, StatusCategory, StoreExt, Worker, WorkerConfig,
    WorkspaceId,
};
use ordonis_fakes::jira::{FakeJira, FakeWorkflow, sign};
use ordonis_jira::JiraProvider;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};

const SECRET: &str = "jira-workflow-secret";
const PREVIEW: &str = "POST /rest/api/3/workflows/preview";

fn provider() -> JiraProvider {
    JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::from_millis(1))
}

/// A site with issue 10001 at `start` under `workflow`; webhooks are kept, not sent.
async fn jira(workflow: FakeWorkflow, start: &str) -> FakeJira {
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    let (id, name, cat) = workflow.status_named(start).unwrap();
    jira.set_workflow(workflow);
    jira.insert_issue(json!({
        "id": "10001", "key": "KAN-1",
        "fields": {
            "summary": "Login fails",
            "status": {"id": id, "name": name, "statusCategory": {"key": cat}},
            "project": {"id": "10000", "key": "KAN"},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    }));
    jira
}

async fn push_status(jira: &FakeJira, name: &str, cat: StatusCategory) -> PushOutcome {
    provider()
        .push(
            &ctx(&jira.base_url()),
            &ObjectKey::new("10001", "issue"),
            &FieldPatch::new().with(FieldValue::Status(Status::new(cat, name))),
        )
        .await
        .unwrap()
}

fn status_of(jira: &FakeJira) -> String {
    jira.issue("10001").unwrap()["fields"]["status"]["name"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn status(cat: StatusCategory, name: &str) -> FieldValue {
    FieldValue::Status(Status::new(cat, name))
}

/// To Do offers Blocked (a dead end: only back to To Do) before In Progress, both of the
/// same category: exploring walks into Blocked and gives up there.
fn dead_end_workflow() -> FakeWorkflow {
    FakeWorkflow::new(&[
        ("1", "To Do", "new"),
        ("2", "Blocked", "indeterminate"),
        ("3", "In Progress", "indeterminate"),
        ("4", "Done", "done"),
    ])
    .directed("11", "Block", &["To Do"], "Blocked")
    .directed("12", "Start", &["To Do"], "In Progress")
    .directed("21", "Unblock", &["Blocked"], "To Do")
    .directed("31", "Finish", &["In Progress"], "Done")
}

/// To Do → In Progress → Done, nothing direct.
fn two_hop_workflow() -> FakeWorkflow {
    FakeWorkflow::new(&[
        ("1", "To Do", "new"),
        ("3", "In Progress", "indeterminate"),
        ("4", "Done", "done"),
    ])
    .directed("11", "Start", &["To Do"], "In Progress")
    .directed("21", "Finish", &["In Progress"], "Done")
}

#[tokio::test]
async fn the_planned_path_goes_straight_past_a_dead_end() {
    let jira = jira(dead_end_workflow(), "To Do").await;
    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert_eq!(out.applied, vec![Field::Status], "{out:?}");
    assert_eq!(status_of(&jira), "Done");
    assert_eq!(jira.transitions_done(), ["12", "31"], "no wasted move");
    assert_eq!(
        out.passed_through,
        [status(StatusCategory::InProgress, "In Progress")]
    );
    assert!(jira.requests().iter().any(|r| r == PREVIEW));
}

#[tokio::test]
async fn no_usable_path_is_refused_before_any_move() {
    // Done exists, but nothing leads there.
    let wf = FakeWorkflow::new(&[
        ("1", "To Do", "new"),
        ("3", "In Progress", "indeterminate"),
        ("4", "Done", "done"),
    ])
    .directed("11", "Start", &["To Do"], "In Progress")
    .directed("12", "Stop", &["In Progress"], "To Do")
    .directed("41", "Reopen", &["Done"], "To Do");
    let jira = jira(wf, "To Do").await;
    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert!(out.applied.is_empty(), "{out:?}");
    assert_eq!(out.refused.len(), 1, "{out:?}");
    assert!(
        out.refused[0]
            .1
            .contains("no transition path from \"To Do\""),
        "{out:?}"
    );
    assert_eq!(status_of(&jira), "To Do");
    assert!(jira.transitions_done().is_empty());
    assert!(
        !jira
            .requests()
            .iter()
            .any(|r| r == "POST /rest/api/3/issue/10001/transitions"),
        "no transition was posted"
    );
}

#[tokio::test]
async fn a_hop_held_back_by_a_condition_stops_naming_where_the_issue_was_left() {
    let jira = jira(two_hop_workflow().with_failing_condition("21"), "To Do").await;
    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert!(out.applied.is_empty(), "{out:?}");
    let reason = &out.refused[0].1;
    assert!(
        reason.contains("does not offer the planned transition \"Finish\""),
        "{reason}"
    );
    assert!(reason.contains("left at \"In Progress\""), "{reason}");
    assert_eq!(jira.transitions_done(), ["11"]);
}

fn reviewer_screen() -> Value {
    json!({"customfield_10050": {"required": true, "name": "Reviewer", "key": "customfield_10050",
                                 "hasDefaultValue": false}})
}

#[tokio::test]
async fn a_first_hop_whose_screen_cannot_be_filled_is_planned_around() {
    // The direct To Do → Done needs a reviewer Ordonis has no value for; the way through
    // In Progress needs nothing.
    let wf = two_hop_workflow()
        .directed("13", "Close", &["To Do"], "Done")
        .with_screen("13", reviewer_screen());
    let jira = jira(wf, "To Do").await;
    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert_eq!(out.applied, vec![Field::Status], "{out:?}");
    assert_eq!(jira.transitions_done(), ["11", "21"]);
}

#[tokio::test]
async fn a_later_hops_unfillable_screen_stops_naming_where_the_issue_was_left() {
    let jira = jira(
        two_hop_workflow().with_screen("21", reviewer_screen()),
        "To Do",
    )
    .await;
    // The fake holds the screen to account: without the field, Jira's 400.
    let http = reqwest::Client::new();
    jira.update_issue(
        "10001",
        &json!({"status": {"name": "In Progress"}}),
        "acc-ann",
    )
    .await
    .unwrap();
    let r = http
        .post(format!(
            "{}/rest/api/3/issue/10001/transitions",
            jira.base_url()
        ))
        .basic_auth("bot@example.com", Some("tok"))
        .json(&json!({"transition": {"id": "21"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"]["customfield_10050"], "Reviewer is required.");
    jira.update_issue("10001", &json!({"status": {"name": "To Do"}}), "acc-ann")
        .await
        .unwrap();

    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert!(out.applied.is_empty(), "{out:?}");
    let reason = &out.refused[0].1;
    assert!(reason.contains("Reviewer (customfield_10050)"), "{reason}");
    assert!(reason.contains("left at \"In Progress\""), "{reason}");
    assert_eq!(jira.transitions_done(), ["11"]);
    // With a value for the field, the same path goes through.
    let mut c = ctx(&jira.base_url());
    c.options = json!({"transition_fields": {"customfield_10050": {"accountId": "acc-rev"}}});
    let out = provider()
        .push(
            &c,
            &ObjectKey::new("10001", "issue"),
            &FieldPatch::new().with(status(StatusCategory::Done, "Done")),
        )
        .await
        .unwrap();
    assert_eq!(out.applied, vec![Field::Status], "{out:?}");
    assert_eq!(status_of(&jira), "Done");
}

#[tokio::test]
async fn without_permission_to_read_the_workflow_it_explores_and_still_arrives() {
    let jira = jira(two_hop_workflow(), "To Do").await;
    jira.deny_workflow_read(true);
    let out = push_status(&jira, "Done", StatusCategory::Done).await;
    assert_eq!(out.applied, vec![Field::Status], "{out:?}");
    assert_eq!(status_of(&jira), "Done");
    assert_eq!(jira.transitions_done(), ["11", "21"]);
    assert_eq!(
        out.passed_through,
        [status(StatusCategory::InProgress, "In Progress")]
    );
    // The workflow was asked for (and refused) before exploring.
    assert!(jira.requests().iter().any(|r| r == PREVIEW));
}

#[tokio::test]
async fn the_preview_answers_in_the_specs_shape_and_403_without_permission() {
    let jira = jira(dead_end_workflow(), "To Do").await;
    let http = reqwest::Client::new();
    let url = format!("{}/rest/api/3/workflows/preview", jira.base_url());
    let ask = |body: Value| {
        http.post(&url)
            .basic_auth("bot@example.com", Some("tok"))
            .json(&body)
            .send()
    };
    let v: Value = ask(json!({"projectId": "10000", "issueTypeIds": ["10001"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses = v["statuses"].as_array().unwrap();
    assert_eq!(statuses.len(), 4);
    assert_eq!(statuses[3]["statusCategory"], "DONE");
    let wf = &v["workflows"][0];
    assert_eq!(wf["queryContext"][0]["issueTypes"][0], "10001");
    let transitions = wf["transitions"].as_array().unwrap();
    assert_eq!(transitions[0]["type"], "INITIAL");
    let block = transitions.iter().find(|t| t["id"] == "11").unwrap();
    assert_eq!(block["type"], "DIRECTED");
    let from = block["links"][0]["fromStatusReference"].as_str().unwrap();
    assert!(
        statuses
            .iter()
            .any(|s| s["statusReference"] == from && s["name"] == "To Do")
    );
    // projectId is required, and one lookup term.
    let r = ask(json!({"issueTypeIds": ["10001"]})).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = ask(json!({"projectId": "10000"})).await.unwrap();
    assert_eq!(r.status(), 400);
    jira.deny_workflow_read(true);
    let r = ask(json!({"projectId": "10000", "issueTypeIds": ["10001"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

// ---- Engine level: a hop's webhook processed while the push still runs -----------------

fn worker(engine: &Engine, id: &str) -> Worker {
    Worker::new(
        engine.clone(),
        WorkerConfig {
            id: id.into(),
            batch_size: 8,
            concurrency: 2,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(5),
        },
    )
}

async fn ingest(engine: &Engine, integration: IntegrationId, body: &[u8]) {
    let mut h = HeaderMap::new();
    h.insert(
        "x-hub-signature",
        HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
    );
    h.insert(
        "x-atlassian-webhook-identifier",
        HeaderValue::from_str(&ordonis_core::provider_http::hmac_sha256_hex(
            "delivery", body,
        ))
        .unwrap(),
    );
    let resp = engine
        .ingest(integration, &Method::POST, &h, Bytes::from(body.to_vec()))
        .await;
    assert_eq!(resp.status, 200, "{resp:?}");
}

/// Webhooks the fake kept, once some arrive (the fake echoes from a spawned task).
async fn next_webhooks(jira: &FakeJira) -> Vec<Vec<u8>> {
    for _ in 0..200 {
        let hooks = jira.take_webhooks();
        if !hooks.is_empty() {
            return hooks;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no webhook came");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hops_webhook_processed_during_the_push_is_our_echo() {
    let jira = jira(two_hop_workflow(), "To Do").await;
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(provider()))
        .build();
    let ws = WorkspaceId::new("ws-jira-path").unwrap();
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("jira"),
            config: IntegrationConfig::new(jira.base_url()),
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
    jira.announce_created("10001", "acc-ann").await.unwrap();
    for body in next_webhooks(&jira).await {
        ingest(&engine, integration, &body).await;
    }
    worker(&engine, "w0").drain().await.unwrap();
    let task = store.all_tasks(&ws).await.unwrap().pop().expect("imported");
    assert_eq!(task.fields.status.name, "To Do");

    // The push makes its first hop, then waits before the second.
    jira.hold_transitions_after(1);
    engine
        .change_task(
            &ws,
            task.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(status(StatusCategory::Done, "Done")),
        )
        .await
        .unwrap();
    let pusher = tokio::spawn({
        let w = worker(&engine, "w1");
        async move { w.drain().await }
    });
    // The first hop's webhook, processed by another worker while the push is in flight.
    let hop = next_webhooks(&jira).await;
    assert_eq!(jira.transitions_done(), ["11"]);
    for body in &hop {
        ingest(&engine, integration, body).await;
    }
    let mut seen = None;
    for _ in 0..200 {
        worker(&engine, "w2").drain().await.unwrap();
        let entries = store.ledger_entries(&ws, 0, 1000).await.unwrap();
        let hop_value = status(StatusCategory::InProgress, "In Progress");
        seen = entries.into_iter().find(|e| {
            let is_hop = e.record.field == Some(Field::Status)
                && e.record
                    .after
                    .as_ref()
                    .is_some_and(|v| v.same_as(&hop_value));
            is_hop || e.record.outcome == Outcome::Conflict
        });
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!pusher.is_finished(), "the push is still in flight");
    let entry = seen.expect("the hop's webhook was processed");
    assert_eq!(entry.record.outcome, Outcome::Confirmed, "{entry:#?}");
    assert!(
        entry.record.rule.contains("intermediate step of our push"),
        "{}",
        entry.record.rule
    );

    // The push finishes; its final echo confirms it, and nothing is pushed again.
    jira.release_transitions();
    pusher.await.unwrap().unwrap();
    for body in next_webhooks(&jira).await {
        ingest(&engine, integration, &body).await;
    }
    worker(&engine, "w3").drain().await.unwrap();
    assert_eq!(jira.transitions_done(), ["11", "21"]);
    let task = store.workspace_task(&ws, task.id).await.unwrap().unwrap();
    assert_eq!(task.fields.status.name, "Done");
    assert!(task.sync[&Field::Status].sent.is_empty(), "{task:#?}");
    let entries = store.ledger_entries(&ws, 0, 1000).await.unwrap();
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict),
        "{entries:#?}"
    );
}
