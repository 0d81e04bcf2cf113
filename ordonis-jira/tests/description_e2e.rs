//! Jira end to end: engine + memory store + the testkit's FakeJira over HTTP (REST v2
//! webhooks with wiki markup, ADF on v3, edit screens, required transition fields, limits).
//!
//! A Jira description with headings, a list, a link, an image and a mention round-trips
//! through CollabHub:
//! - an edit of the title leaves Jira's description byte-identical;
//! - an edit of the description keeps the image and the mention;
//! - an edit that would drop the mention is refused, with the reason in the ledger;
//! - the echo settles the field in one step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::{
    Actor, ApiAuth, Engine, Field, FieldPatch, FieldValue, IntegrationConfig, IntegrationId,
    IntegrationSecrets, Keyring, Ledger, NewIntegration, Outcome, ProviderKind, SecretKey, Status,
    StatusCategory, StoreExt, Task, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::jira::{FakeJira, sign};
use ordonis_jira::JiraProvider;
use ordonis_jira::rich_text::adf_to_markdown;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};

const SECRET: &str = "jira-description-secret";

struct Site {
    jira: FakeJira,
    store: Arc<MemoryStore>,
    engine: Engine,
    integration: IntegrationId,
    ws: WorkspaceId,
}

fn rich() -> Value {
    serde_json::from_str(include_str!("fixtures/adf/description_rich.json")).unwrap()
}

async fn site() -> Site {
    site_with(Value::Null).await
}

async fn site_with(options: Value) -> Site {
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    jira.insert_issue(json!({
        "id": "10001", "key": "KAN-1",
        "fields": {
            "summary": "Login fails",
            "description": rich(),
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null,
            "duedate": null,
            "project": {"id": "10000", "key": "KAN"},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    }));
    let store = Arc::new(MemoryStore::new());
    let provider = JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::from_millis(1));
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(provider))
        .build();
    let ws = WorkspaceId::new("ws-jira-description").unwrap();
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("jira"),
            config: {
                let mut c = IntegrationConfig::new(jira.base_url());
                c.options = options;
                c
            },
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
    Site {
        jira,
        store,
        engine,
        integration,
        ws,
    }
}

impl Site {
    /// Hands every webhook the fake sent to the engine and runs workers until idle, as long
    /// as pushes produce echoes.
    async fn settle(&self) {
        for _ in 0..8 {
            Worker::new(
                self.engine.clone(),
                WorkerConfig {
                    id: "w".into(),
                    batch_size: 8,
                    concurrency: 1,
                    lease: Duration::from_secs(30),
                    idle_poll: Duration::from_millis(5),
                },
            )
            .drain()
            .await
            .unwrap();
            // The fake echoes REST changes in the background: wait for every echo.
            assert!(
                self.jira.echoes_sent(Duration::from_secs(10)).await,
                "the fake's echoes were not sent within 10 s"
            );
            let hooks = self.jira.take_webhooks();
            if hooks.is_empty() {
                return;
            }
            for body in &hooks {
                let mut h = HeaderMap::new();
                h.insert(
                    "x-hub-signature",
                    HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
                );
                h.insert(
                    "x-atlassian-webhook-identifier",
                    HeaderValue::from_str(&uuid_like(body)).unwrap(),
                );
                let resp = self
                    .engine
                    .ingest(
                        self.integration,
                        &Method::POST,
                        &h,
                        Bytes::from(body.clone()),
                    )
                    .await;
                assert_eq!(resp.status, 200, "{resp:?}");
            }
        }
        panic!("still echoing after 8 rounds: an echo loop");
    }

    async fn task(&self) -> Task {
        self.store
            .all_tasks(&self.ws)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.external.iter().any(|e| e.key.external_id == "10001"))
            .expect("the issue became a task")
    }

    fn jira_description(&self) -> String {
        serde_json::to_string(&self.jira.issue("10001").unwrap()["fields"]["description"]).unwrap()
    }

    async fn change(&self, patch: FieldPatch) {
        let task = self.task().await;
        self.engine
            .change_task(&self.ws, task.id, &Actor::human("u-1"), &patch)
            .await
            .unwrap();
        self.settle().await;
    }

    async fn entries(&self) -> Vec<ordonis_core::LedgerEntry> {
        self.store.ledger_entries(&self.ws, 0, 1000).await.unwrap()
    }
}

fn uuid_like(body: &[u8]) -> String {
    ordonis_core::provider_http::hmac_sha256_hex("delivery", body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_description_round_trips_through_collabhub() {
    let s = site().await;
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;

    // Imported from REST v3 as Markdown, not from the webhook's wiki markup.
    let task = s.task().await;
    assert_eq!(task.fields.description, adf_to_markdown(&rich()));
    assert!(
        task.fields
            .description
            .starts_with("## Login fails on Safari")
    );

    // 1. A title edit leaves Jira's description byte-identical.
    let before = s.jira_description();
    s.change(FieldPatch::new().with(FieldValue::Title("Login fails on Safari 17".into())))
        .await;
    assert_eq!(
        s.jira.issue("10001").unwrap()["fields"]["summary"],
        "Login fails on Safari 17"
    );
    assert_eq!(s.jira_description(), before);
    let task = s.task().await;
    assert!(task.sync[&Field::Title].sent.is_empty(), "title settled");

    // 2. A description edit keeps the image and the mention (their ADF untouched), and its
    //    echo settles the field in one step: confirmed, no conflict, nothing pushed again.
    let edited = format!("{}\n\nAlso fails on **iOS**.", task.fields.description);
    let pushes_before = s
        .jira
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT"))
        .count();
    s.change(FieldPatch::new().with(FieldValue::Description(edited.clone())))
        .await;
    let now: Value = s.jira.issue("10001").unwrap()["fields"]["description"].clone();
    let old = rich();
    let blocks = now["content"].as_array().unwrap();
    assert_eq!(blocks.len(), old["content"].as_array().unwrap().len() + 1);
    assert_eq!(
        blocks[1], old["content"][1],
        "the mention's paragraph is as it was"
    );
    assert_eq!(blocks[5], old["content"][5], "the image is as it was");
    assert_eq!(blocks[11], old["content"][11], "the table is as it was");
    assert_eq!(adf_to_markdown(&now), edited);
    let task = s.task().await;
    let st = &task.sync[&Field::Description];
    assert!(st.sent.is_empty() && st.want.is_none(), "settled: {st:?}");
    assert_eq!(task.fields.description, edited);
    let pushes = s
        .jira
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT"))
        .count();
    assert_eq!(pushes, pushes_before + 1, "one push, no echo loop");
    let entries = s.entries().await;
    let description: Vec<_> = entries
        .iter()
        .filter(|e| e.record.field == Some(Field::Description))
        .collect();
    assert!(
        description
            .iter()
            .any(|e| e.record.outcome == Outcome::Confirmed),
        "{description:#?}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict),
        "{entries:#?}"
    );

    // 3. An edit that would drop the mention is refused, with the reason in the ledger, and
    //    Jira's description is left alone.
    let before = s.jira_description();
    let without_mention = edited.replace("Reported by @Ann Lee ⚠️\n\n", "");
    assert_ne!(without_mention, edited);
    s.change(FieldPatch::new().with(FieldValue::Description(without_mention)))
        .await;
    assert_eq!(s.jira_description(), before);
    let entries = s.entries().await;
    let refused = entries
        .iter()
        .rev()
        .find(|e| {
            e.record.field == Some(Field::Description) && e.record.outcome == Outcome::Rejected
        })
        .expect("a refusal in the ledger");
    assert!(
        refused.record.rule.contains("a mention"),
        "{}",
        refused.record.rule
    );
}

async fn status_of_jira(s: &Site) -> (String, Value) {
    let issue = s.jira.issue("10001").unwrap();
    (
        issue["fields"]["status"]["name"]
            .as_str()
            .unwrap()
            .to_owned(),
        issue["fields"]["resolution"].clone(),
    )
}

fn status(category: StatusCategory, name: &str) -> FieldPatch {
    FieldPatch::new().with(FieldValue::Status(Status::new(category, name)))
}

/// "Done" reaches a workflow whose done transitions need a resolution, whose first done
/// transition is "Won't Do": the Done transition is taken with the resolution "Done", and
/// its echo confirms the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_reaches_a_workflow_that_needs_a_resolution() {
    let s = site().await;
    s.jira.require_resolution();
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s.change(status(StatusCategory::Done, "Done")).await;
    let (name, resolution) = status_of_jira(&s).await;
    assert_eq!(name, "Done");
    assert_eq!(resolution["name"], "Done");
    let task = s.task().await;
    assert_eq!(task.fields.status.name, "Done");
    assert!(task.sync[&Field::Status].sent.is_empty());
    let entries = s.entries().await;
    assert!(
        entries.iter().any(
            |e| e.record.field == Some(Field::Status) && e.record.outcome == Outcome::Confirmed
        ),
        "{entries:#?}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict)
    );
}

/// A status Jira's workflow does not have is refused (in the ledger, with the reason), not
/// coerced into another one (#18: "Blocked" became "To Do", recorded as a conflict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_status_is_refused_not_coerced() {
    let s = site().await;
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s.change(status(StatusCategory::Todo, "Blocked")).await;
    assert_eq!(status_of_jira(&s).await.0, "To Do");
    assert!(
        !s.jira
            .requests()
            .iter()
            .any(|r| r.starts_with("POST") && r.ends_with("/transitions")),
        "no transition was made"
    );
    let entries = s.entries().await;
    let refused = entries
        .iter()
        .find(|e| e.record.field == Some(Field::Status) && e.record.outcome == Outcome::Rejected)
        .expect("refused in the ledger");
    assert!(
        refused.record.rule.contains("no status \"Blocked\""),
        "{}",
        refused.record.rule
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict)
    );
    let task = s.task().await;
    assert!(!task.has_unpushed_changes());
    assert_eq!(task.fields.status.name, "To Do");
}

/// With an explicit status map, CollabHub's "Done" moves to the mapped Jira status; Jira
/// reports it under that name, and the echo is recognised as ours (#18: an echo renamed by the
/// provider is confirmed, not a conflict).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_status_echoed_under_its_jira_name_is_confirmed() {
    let s = site_with(json!({"status_map": {"Done": "Won't Do"}, "resolution": "Won't Do"})).await;
    s.jira.require_resolution();
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s.change(status(StatusCategory::Done, "Done")).await;
    let (name, resolution) = status_of_jira(&s).await;
    assert_eq!(name, "Won't Do");
    assert_eq!(resolution["name"], "Won't Do");
    let task = s.task().await;
    assert_eq!(task.fields.status.name, "Won't Do");
    assert!(task.sync[&Field::Status].sent.is_empty());
    let entries = s.entries().await;
    let status_entries: Vec<_> = entries
        .iter()
        .filter(|e| e.record.field == Some(Field::Status))
        .map(|e| e.record.outcome)
        .collect();
    assert!(
        status_entries.contains(&Outcome::Confirmed),
        "{status_entries:?}"
    );
    assert!(
        !status_entries.contains(&Outcome::Conflict),
        "{status_entries:?}"
    );
}

/// A generic done request with no status of its name ("Completed", as Asana calls it) takes
/// a done-category status that means done, not the first one offered ("Won't Do").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_done_never_picks_wont_do() {
    let s = site().await;
    s.jira.require_resolution();
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s.change(status(StatusCategory::Done, "Completed")).await;
    let (name, resolution) = status_of_jira(&s).await;
    assert_eq!(name, "Done");
    assert_eq!(resolution["name"], "Done");
    let entries = s.entries().await;
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict),
        "{entries:#?}"
    );
    assert!(s.task().await.sync[&Field::Status].sent.is_empty());
}

/// A per-issue write limit (429, `RateLimit-Reason: jira-per-issue-on-write`) defers only
/// that issue's push: the integration is not paused and another issue's push goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_issue_limit_defers_only_that_push() {
    let s = site().await;
    let mut other = s.jira.issue("10001").unwrap();
    other["id"] = json!("10002");
    other["key"] = json!("KAN-2");
    s.jira.insert_issue(other);
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.jira.announce_created("10002", "acc-ann").await.unwrap();
    s.settle().await;
    let tasks = s.store.all_tasks(&s.ws).await.unwrap();
    assert_eq!(tasks.len(), 2);
    s.jira.fail_next_write(
        429,
        &[
            ("Retry-After", "1"),
            ("RateLimit-Reason", "jira-per-issue-on-write"),
        ],
    );
    for t in &tasks {
        s.engine
            .change_task(
                &s.ws,
                t.id,
                &Actor::human("u-1"),
                &FieldPatch::new().with(FieldValue::Title(format!("{} (renamed)", t.fields.title))),
            )
            .await
            .unwrap();
    }
    s.settle().await;
    let renamed = |s: &Site| {
        ["10001", "10002"]
            .iter()
            .filter(|id| {
                s.jira.issue(id).unwrap()["fields"]["summary"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("(renamed)"))
            })
            .count()
    };
    assert_eq!(renamed(&s), 1, "the other issue's push went through");
    let record = ordonis_core::Store::integration(&*s.store, s.integration)
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.paused_until.is_none(),
        "the integration is not paused"
    );
    // After Retry-After, the deferred push goes through.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.settle().await;
    assert_eq!(renamed(&s), 2);
}

/// A task whose edit screen lacks Priority still gets its title changed: the edit metadata
/// (or, without it, Jira's 400 naming `priority`) takes the priority out, the title is sent,
/// and only the priority is refused (ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_without_priority_still_takes_the_title() {
    let s = site().await;
    s.jira
        .set_edit_screen(&["summary", "description", "duedate"]);
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s.change(
        FieldPatch::new()
            .with(FieldValue::Title("Login fails everywhere".into()))
            .with(FieldValue::Priority(Some(ordonis_core::Priority {
                level: ordonis_core::PriorityLevel::High,
                name: "High".into(),
            }))),
    )
    .await;
    let issue = s.jira.issue("10001").unwrap();
    assert_eq!(issue["fields"]["summary"], "Login fails everywhere");
    assert_eq!(issue["fields"]["priority"]["name"], "Medium");
    let entries = s.entries().await;
    let refused = entries
        .iter()
        .find(|e| e.record.field == Some(Field::Priority) && e.record.outcome == Outcome::Rejected)
        .expect("the priority was refused");
    assert!(
        refused.record.rule.contains("edit screen"),
        "{}",
        refused.record.rule
    );
    let task = s.task().await;
    assert!(
        task.sync[&Field::Title].sent.is_empty(),
        "the title settled"
    );
    assert!(!task.has_unpushed_changes());
}
