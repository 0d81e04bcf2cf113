//! Creating issues and reading accounts through the Jira adapter's `CreateProvider` and
//! `AccountProvider`, against the fake Jira site over real HTTP: a create carries our marker
//! property and answers the issue; a create whose answer was lost is found again by its
//! marker (and only by its own); Jira's refusals are typed; sub-tasks get their parent;
//! accounts show hidden e-mails as none and apps as agents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::ctx;
use ordonis_core::{
    Assignee, CreateDraft, CreateProvider, Field, FieldPatch, FieldValue, PersonKind, Priority,
    PriorityLevel, Provider, ProviderContext, ProviderError, RemoteTask,
};
use ordonis_fakes::jira::{API_ACCOUNT, FakeJira};
use ordonis_jira::JiraProvider;
use serde_json::{Value, json};

const MARKER: &str = "tsk_0193ab7f-0000-7000-8000-000000000001";

async fn site() -> (FakeJira, JiraProvider, ProviderContext) {
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    jira.add_project("KAN", "10000");
    // Someone else's issue in the project: never taken for ours.
    jira.insert_issue(json!({
        "id": "10001", "key": "KAN-1",
        "fields": {"summary": "Login fails", "project": {"id": "10000", "key": "KAN"},
            "reporter": {"accountId": "someone-else"},
            "created": "2026-12-07T10:00:00.000+0000",
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}}}
    }));
    let p = JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::ZERO);
    let c = ctx(&jira.base_url());
    (jira, p, c)
}

fn titled(title: &str) -> FieldPatch {
    let mut f = FieldPatch::new();
    f.set(FieldValue::Title(title.to_owned()));
    f
}

fn draft<'a>(marker: &'a str, fields: &'a FieldPatch) -> CreateDraft<'a> {
    CreateDraft {
        marker,
        fields,
        project: Some("KAN"),
        issue_type: None,
        parent: None,
    }
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn creates(p: &JiraProvider) -> &dyn CreateProvider {
    p.creates().expect("the Jira provider creates")
}

fn posts(jira: &FakeJira) -> usize {
    jira.requests()
        .iter()
        .filter(|r| *r == "POST /rest/api/3/issue")
        .count()
}

fn marker_value(m: &str) -> Value {
    json!({ "task_id": m })
}

#[tokio::test]
async fn a_create_carries_the_marker_and_answers_the_issue() {
    let (jira, p, c) = site().await;
    jira.add_user("acc-alice", "Alice Smith", Some("alice@example.com"), false);
    let mut fields = titled("Checkout times out");
    fields.set(FieldValue::Description("Steps:\n\n- open *cart*".into()));
    fields.set(FieldValue::Priority(Some(Priority {
        level: PriorityLevel::High,
        name: "High".into(),
    })));
    fields.set(FieldValue::DueDate(Some(time::macros::date!(
        2026 - 12 - 24
    ))));
    fields.set(FieldValue::Assignee(Some(Assignee {
        account_id: "acc-alice".into(),
        display_name: None,
        email: None,
    })));

    let task = creates(&p)
        .create_task(&c, &draft(MARKER, &fields))
        .await
        .unwrap();

    // KAN-1 exists, so ours is KAN-2.
    let issue = jira.issue("KAN-2").expect("the issue was made");
    assert_eq!(task.key.external_id, issue["id"].as_str().unwrap());
    assert_eq!(task.key.object_type.as_str(), "issue");
    assert_eq!(
        task.url.as_deref(),
        Some(format!("{}/browse/KAN-2", jira.base_url()).as_str())
    );
    assert_eq!(
        jira.issue_property("KAN-2", "ordonis"),
        Some(marker_value(MARKER))
    );
    // What was asked came back, as created.
    assert_eq!(
        task.fields.get(Field::Title),
        Some(&FieldValue::Title("Checkout times out".into()))
    );
    assert_eq!(
        task.fields.get(Field::Description),
        Some(&FieldValue::Description("Steps:\n\n- open *cart*".into()))
    );
    assert!(matches!(
        task.fields.get(Field::Priority),
        Some(FieldValue::Priority(Some(p))) if p.name == "High"
    ));
    assert!(matches!(
        task.fields.get(Field::Assignee),
        Some(FieldValue::Assignee(Some(a))) if a.account_id == "acc-alice"
    ));
    assert_eq!(
        task.fields.get(Field::DueDate),
        Some(&FieldValue::DueDate(Some(time::macros::date!(
            2026 - 12 - 24
        ))))
    );
    assert!(matches!(
        task.fields.get(Field::Status),
        Some(FieldValue::Status(s)) if s.name == "To Do"
    ));
    assert!(task.modified_at_ms > 0);
    // Jira sets what it sets: the reporter is the API account, the type the default Task.
    assert_eq!(issue["fields"]["reporter"]["accountId"], API_ACCOUNT);
    assert_eq!(issue["fields"]["issuetype"]["name"], "Task");
    assert_eq!(issue["fields"]["project"]["key"], "KAN");

    // Its creation is announced, as Jira does, with the acting account's type.
    assert!(jira.echoes_sent(Duration::from_secs(5)).await);
    let hooks: Vec<Value> = jira
        .take_webhooks()
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let created: Vec<&Value> = hooks
        .iter()
        .filter(|h| h["webhookEvent"] == "jira:issue_created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["issue"]["key"], "KAN-2");
    assert_eq!(created[0]["user"]["accountType"], "atlassian");
    assert_eq!(posts(&jira), 1);
}

#[tokio::test]
async fn a_lost_answer_is_found_by_its_marker_and_only_by_it() {
    let (jira, p, c) = site().await;
    let fields = titled("Checkout times out");
    // Another of our creates, earlier, with another marker.
    let other = creates(&p)
        .create_task(&c, &draft("tsk_other", &titled("Another")))
        .await
        .unwrap();

    let since = now_ms();
    jira.lose_next_create_answer(1);
    let err = creates(&p)
        .create_task(&c, &draft(MARKER, &fields))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "a lost answer is retryable: {err:?}");
    let made = jira.issues_with_property("ordonis", &marker_value(MARKER));
    assert_eq!(made.len(), 1, "the lost create made its issue");

    let found: RemoteTask = creates(&p)
        .find_created(&c, &draft(MARKER, &fields), since)
        .await
        .unwrap()
        .expect("the lost create is found");
    let issue = jira.issue(&made[0]).unwrap();
    assert_eq!(found.key.external_id, issue["id"].as_str().unwrap());
    assert_ne!(found.key, other.key);
    assert_eq!(
        found.url.as_deref(),
        Some(format!("{}/browse/{}", jira.base_url(), made[0]).as_str())
    );
    assert_eq!(
        found.fields.get(Field::Title),
        Some(&FieldValue::Title("Checkout times out".into()))
    );

    // A marker nothing carries finds nothing (the other issues of the project are not it).
    let none = creates(&p)
        .find_created(&c, &draft("tsk_never_created", &fields), since)
        .await
        .unwrap();
    assert_eq!(none, None);

    // The search asked for our own recent creations and their marker property.
    assert!(
        jira.requests()
            .iter()
            .any(|r| r == "POST /rest/api/3/search/jql")
    );
    // Still exactly one issue carries the marker.
    assert_eq!(
        jira.issues_with_property("ordonis", &marker_value(MARKER))
            .len(),
        1
    );
}

#[tokio::test]
async fn find_created_reads_only_the_accounts_own_issues_in_the_window() {
    let (_jira, p, c) = site().await;
    let fields = titled("Checkout times out");
    creates(&p)
        .create_task(&c, &draft(MARKER, &fields))
        .await
        .unwrap();
    // Searching from well after the create (beyond the 5-minute margin) does not see it...
    let later = now_ms() + 10 * 60 * 1000;
    assert_eq!(
        creates(&p)
            .find_created(&c, &draft(MARKER, &fields), later)
            .await
            .unwrap(),
        None
    );
    // ...but a clock 4 minutes ahead of Jira's still does (the margin).
    let skewed = now_ms() + 4 * 60 * 1000;
    assert!(
        creates(&p)
            .find_created(&c, &draft(MARKER, &fields), skewed)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_required_field_refuses_until_the_options_fill_it() {
    let (jira, p, mut c) = site().await;
    jira.require_create_field("KAN", "Task", "customfield_10050", "Team");
    let fields = titled("Needs a team");

    let err = creates(&p)
        .create_task(&c, &draft(MARKER, &fields))
        .await
        .unwrap_err();
    match &err {
        ProviderError::Terminal(m) => {
            assert!(m.contains("Team (customfield_10050)"), "{m}");
            assert!(m.contains("options.create_fields"), "{m}");
        }
        other => panic!("expected Terminal, got {other:?}"),
    }
    assert_eq!(posts(&jira), 0, "refused before anything is written");

    // By field id.
    c.options = json!({"create_fields": {"customfield_10050": {"id": "42"}}});
    let task = creates(&p)
        .create_task(&c, &draft(MARKER, &fields))
        .await
        .unwrap();
    let issue = jira.issue(&task.key.external_id).unwrap();
    assert_eq!(issue["fields"]["customfield_10050"], json!({"id": "42"}));

    // By the field's name.
    c.options = json!({"create_fields": {"team": {"id": "7"}}});
    let task = creates(&p)
        .create_task(&c, &draft("tsk_2", &fields))
        .await
        .unwrap();
    let issue = jira.issue(&task.key.external_id).unwrap();
    assert_eq!(issue["fields"]["customfield_10050"], json!({"id": "7"}));
}

#[tokio::test]
async fn the_fake_refuses_a_create_without_a_required_field_as_jira_does() {
    let (jira, _p, _c) = site().await;
    jira.require_create_field("KAN", "Task", "customfield_10050", "Team");
    let resp = reqwest::Client::new()
        .post(format!("{}/rest/api/3/issue", jira.base_url()))
        .basic_auth("bot@example.com", Some("tok"))
        .json(
            &json!({"fields": {"project": {"key": "KAN"}, "issuetype": {"id": "10001"},
                                 "summary": "x"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errorMessages": [], "errors": {"customfield_10050": "Team is required."}})
    );
}

#[tokio::test]
async fn refusals_are_typed() {
    let (jira, p, c) = site().await;
    let fields = titled("x");

    // No project at all.
    let mut d = draft(MARKER, &fields);
    d.project = None;
    let err = creates(&p).create_task(&c, &d).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.starts_with("no project to create in")),
        "{err:?}"
    );

    // A project Jira does not have (or will not show).
    d.project = Some("NOPE");
    let err = creates(&p).create_task(&c, &d).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains("project NOPE")),
        "{err:?}"
    );

    // An issue type the project does not have: the ones it has are named.
    let mut d = draft(MARKER, &fields);
    d.issue_type = Some("Epic");
    let err = creates(&p).create_task(&c, &d).await.unwrap_err();
    match &err {
        ProviderError::Terminal(m) => assert_eq!(
            m,
            "issue type Epic does not exist in project KAN (it has: Task, Bug, Sub-task)"
        ),
        other => panic!("{other:?}"),
    }
    // The name is matched case-insensitively.
    d.issue_type = Some("bug");
    let task = creates(&p).create_task(&c, &d).await.unwrap();
    assert_eq!(
        jira.issue(&task.key.external_id).unwrap()["fields"]["issuetype"]["name"],
        "Bug"
    );

    // A project the account may not create in: Jira's 403.
    jira.deny_create("KAN", true);
    let err = creates(&p)
        .create_task(&c, &draft("tsk_denied", &fields))
        .await
        .unwrap_err();
    match &err {
        ProviderError::Forbidden(m) => assert!(
            m.contains("cannot create issues in project KAN")
                && m.contains("You do not have permission to create issues"),
            "{m}"
        ),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(!err.is_retryable());
    jira.deny_create("KAN", false);

    // Jira's 400 is terminal with its message; 401 terminal; 5xx retryable (the issue may
    // exist).
    jira.fail_next_write(400, &[]);
    let err = creates(&p)
        .create_task(&c, &draft("tsk_400", &fields))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains("(400)") && m.contains("limit reached")),
        "{err:?}"
    );
    jira.fail_next_write(401, &[]);
    let err = creates(&p)
        .create_task(&c, &draft("tsk_401", &fields))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Terminal(_)), "{err:?}");
    jira.fail_next_write(502, &[]);
    let err = creates(&p)
        .create_task(&c, &draft("tsk_502", &fields))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Retryable { .. }), "{err:?}");
    jira.fail_next_write(429, &[("Retry-After", "30")]);
    let err = creates(&p)
        .create_task(&c, &draft("tsk_429", &fields))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
}

#[tokio::test]
async fn a_subtask_gets_its_parent_and_needs_one() {
    let (jira, p, c) = site().await;
    let fields = titled("Write the migration");
    let mut d = draft(MARKER, &fields);
    d.issue_type = Some("Sub-task");

    // Without a parent the create screen refuses it before anything is written.
    let err = creates(&p).create_task(&c, &d).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains("Parent (parent)")),
        "{err:?}"
    );
    assert_eq!(posts(&jira), 0);

    // By key...
    d.parent = Some("KAN-1");
    let task = creates(&p).create_task(&c, &d).await.unwrap();
    let issue = jira.issue(&task.key.external_id).unwrap();
    assert_eq!(issue["fields"]["parent"]["key"], "KAN-1");
    assert_eq!(issue["fields"]["issuetype"]["name"], "Sub-task");

    // ...or by id.
    d.parent = Some("10001");
    d.marker = "tsk_by_id";
    let task = creates(&p).create_task(&c, &d).await.unwrap();
    let issue = jira.issue(&task.key.external_id).unwrap();
    assert_eq!(issue["fields"]["parent"]["id"], "10001");

    // A parent Jira does not have is its 400, terminal.
    d.parent = Some("KAN-999");
    d.marker = "tsk_no_parent";
    let err = creates(&p).create_task(&c, &d).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Terminal(m) if m.contains("parent")),
        "{err:?}"
    );
}

#[tokio::test]
async fn accounts_show_hidden_emails_as_none_and_apps_as_agents() {
    let (jira, p, c) = site().await;
    jira.add_user("acc-hidden", "Hidden Person", None, false);
    jira.add_user("acc-bot", "Triage bot", Some("bot@apps.example.com"), true);
    jira.add_user("acc-bob", "Bob", Some("bob@example.com"), false);
    let accounts = p.accounts().expect("the Jira provider reads accounts");

    let hidden = accounts.fetch_account(&c, "acc-hidden").await.unwrap();
    assert_eq!(hidden.account_id, "acc-hidden");
    assert_eq!(hidden.display_name.as_deref(), Some("Hidden Person"));
    assert_eq!(hidden.email, None);
    assert_eq!(hidden.kind, PersonKind::Human);

    let bot = accounts.fetch_account(&c, "acc-bot").await.unwrap();
    assert_eq!(bot.kind, PersonKind::Agent);
    assert_eq!(bot.email.as_deref(), Some("bot@apps.example.com"));

    let bob = accounts.fetch_account(&c, "acc-bob").await.unwrap();
    assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
    assert_eq!(bob.kind, PersonKind::Human);

    let err = accounts.fetch_account(&c, "acc-nobody").await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
}
