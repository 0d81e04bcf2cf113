//! Creating work in Jira from CollabHub, end to end through FakeJira over HTTP: a person
//! files a task and exactly one issue appears although the create's answer is lost (the
//! issue carries the `ordonis` property; the status the create could not set follows as a
//! transition); an agent files a sub-task under it; a principal matched by e-mail is assigned
//! (Jira gets their `accountId`); an edit by an account mapped by hand (its e-mail hidden) is
//! attributed to its principal in the ledger; a refused create says why and is not retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::site::{agent, site_with};
use ordonis_core::{
    Actor, CreateState, FieldPatch, FieldValue, Ledger, NewLink, Op, Outcome, Person, PersonKind,
    Status, StatusCategory, Store, StoreExt, Task, TaskId,
};
use serde_json::json;

fn alice() -> Actor {
    Actor::human("usr_alice").named("Alice Smith")
}

fn person(ws: &ordonis_core::WorkspaceId, principal: &str, name: &str) -> Person {
    Person {
        workspace_id: ws.clone(),
        principal: principal.into(),
        kind: PersonKind::Human,
        display_name: name.into(),
        emails: Vec::new(),
        accounts: Vec::new(),
    }
}

async fn task(site: &common::site::Site, id: TaskId) -> Task {
    site.store.task(id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_filed_in_collabhub_reaches_jira_once_and_people_are_mapped() {
    let site = site_with(|c| {
        c.create.project = Some("KAN".into());
        // FakeJira's search has no index lag: look for a lost create at once.
        c.options = json!({"create_lookup_delay_s": 0});
    })
    .await;
    site.jira.add_project("KAN", "10000");
    let link = |issue_type: Option<&str>, parent: Option<String>| NewLink {
        integration_id: site.integration,
        project: None,
        issue_type: issue_type.map(str::to_owned),
        parent,
    };

    // 1. Alice files a task, in progress; the create's first answer is lost.
    site.jira.lose_next_create_answer(1);
    let mut fields = FieldPatch::new();
    fields.set(FieldValue::Title("Checkout times out".into()));
    fields.set(FieldValue::Description("Seen on **Safari 17**.".into()));
    fields.set(FieldValue::Status(Status::new(
        StatusCategory::InProgress,
        "In Progress",
    )));
    let r = site
        .engine
        .create_task(&site.ws, &alice(), &fields, Some(link(None, None)))
        .await
        .unwrap();
    site.settle().await;
    let t = task(&site, r.task_id).await;
    assert_eq!(
        t.create.as_ref().unwrap().state,
        CreateState::Created,
        "{t:#?}"
    );
    let ext = t.link().expect("linked").clone();
    let marker = json!({"task_id": t.id.to_string()});
    let marked = site.jira.issues_with_property("ordonis", &marker);
    assert_eq!(marked.len(), 1, "exactly one issue: {marked:?}");
    let issue = site.jira.issue(&ext.key.external_id).unwrap();
    assert_eq!(issue["fields"]["summary"], "Checkout times out");
    assert_eq!(
        issue["fields"]["status"]["name"], "In Progress",
        "the status the create could not set followed as a transition"
    );
    assert!(ext.url.as_deref().unwrap().contains("/browse/KAN-"));
    assert_eq!(
        site.store.all_tasks(&site.ws).await.unwrap().len(),
        2,
        "KAN-1 and this one: its webhook did not import a second"
    );

    // 2. The agent files a sub-task under it.
    let sub = site
        .engine
        .create_task(
            &site.ws,
            &agent(),
            &FieldPatch::new().with(FieldValue::Title("Profile the payment call".into())),
            Some(link(Some("Sub-task"), Some(t.id.to_string()))),
        )
        .await
        .unwrap();
    site.settle().await;
    let st = task(&site, sub.task_id).await;
    assert_eq!(st.create.as_ref().unwrap().state, CreateState::Created);
    let sub_issue = site
        .jira
        .issue(&st.link().unwrap().key.external_id)
        .unwrap();
    assert_eq!(
        sub_issue["fields"]["parent"]["id"],
        ext.key.external_id.as_str()
    );
    assert_eq!(sub_issue["fields"]["issuetype"]["name"], "Sub-task");

    // 3. Carol (e-mail visible) edits in Jira: her account is read and matched by e-mail,
    //    then Alice assigns the task to the principal usr_carol.
    site.jira
        .add_user("acc-carol", "Carol Diaz", Some("carol@example.com"), false);
    let mut carol = person(&site.ws, "usr_carol", "Carol Diaz");
    carol.emails = vec!["Carol@Example.com".into()];
    site.engine.put_person(carol).await.unwrap();
    site.jira
        .update_issue(
            sub_issue["id"].as_str().unwrap(),
            &json!({"summary": "Profile the payment call (p95)"}),
            "acc-carol",
        )
        .await
        .unwrap();
    site.settle().await;
    let assignee = site
        .engine
        .assignee_for(&site.ws, t.id, "usr_carol")
        .await
        .unwrap();
    assert_eq!(assignee.account_id, "acc-carol");
    site.engine
        .change_task(
            &site.ws,
            t.id,
            &alice(),
            &FieldPatch::new().with(FieldValue::Assignee(Some(assignee))),
        )
        .await
        .unwrap();
    site.settle().await;
    let issue = site.jira.issue(&ext.key.external_id).unwrap();
    assert_eq!(issue["fields"]["assignee"]["accountId"], "acc-carol");

    // 4. Bob's e-mail is hidden: mapped by hand, his edit is his principal's in the ledger.
    site.jira.add_user("acc-bob", "Bob Jones", None, false);
    let mut bob = person(&site.ws, "usr_bob", "Bob Jones");
    bob.accounts = vec![ordonis_core::AccountRef {
        integration_id: site.integration,
        account_id: "acc-bob".into(),
    }];
    site.engine.put_person(bob).await.unwrap();
    site.jira
        .update_issue(
            &ext.key.external_id,
            &json!({"summary": "Checkout times out on Safari"}),
            "acc-bob",
        )
        .await
        .unwrap();
    site.settle().await;
    let entries = site.store.task_ledger(&site.ws, t.id).await.unwrap();
    let edit = entries
        .iter()
        .find(|e| e.record.after == Some(FieldValue::Title("Checkout times out on Safari".into())))
        .expect("Bob's edit is in the ledger");
    assert_eq!(edit.record.actor.id, "usr_bob");
    assert_eq!(edit.record.actor.display_name.as_deref(), Some("Bob Jones"));
    assert_eq!(edit.record.actor.provider, "jira");
    assert_eq!(edit.record.actor.account.as_deref(), Some("acc-bob"));
    // The directory lists both, each with how it was matched; nobody unmatched is Carol.
    let people = site.engine.people(&site.ws).await.unwrap();
    let matched: Vec<(&str, &str)> = people
        .people
        .iter()
        .flat_map(|p| {
            p.accounts
                .iter()
                .map(move |a| (p.principal.as_str(), a.matched_by))
        })
        .collect();
    assert!(matched.contains(&("usr_carol", "email")), "{matched:?}");
    assert!(matched.contains(&("usr_bob", "hand")), "{matched:?}");
    assert!(
        people
            .unmatched
            .iter()
            .all(|a| a.account_id != "acc-carol" && a.account_id != "acc-bob")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_the_screen_refuses_is_recorded_once_with_the_reason() {
    let site = site_with(|c| c.create.project = Some("KAN".into())).await;
    site.jira.add_project("KAN", "10000");
    site.jira
        .require_create_field("KAN", "Task", "customfield_10050", "Team");
    let r = site
        .engine
        .create_task(
            &site.ws,
            &alice(),
            &FieldPatch::new().with(FieldValue::Title("Needs a team".into())),
            Some(NewLink {
                integration_id: site.integration,
                project: None,
                issue_type: None,
                parent: None,
            }),
        )
        .await
        .unwrap();
    site.settle().await;
    let t = task(&site, r.task_id).await;
    let create = t.create.unwrap();
    assert_eq!(create.state, CreateState::Refused);
    let why = create.error.unwrap();
    assert!(
        why.contains("Team") && why.contains("create_fields"),
        "{why}"
    );
    assert!(t.external.is_empty());
    let entries = site.store.task_ledger(&site.ws, r.task_id).await.unwrap();
    let link: Vec<_> = entries.iter().filter(|e| e.record.op == Op::Link).collect();
    assert_eq!(link.len(), 1);
    assert_eq!(link[0].record.outcome, Outcome::Rejected);
    let jobs = site
        .store
        .jobs(&ordonis_core::JobFilter::new(ordonis_core::Queue::Outbox))
        .await
        .unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.state() == ordonis_core::JobState::Done && j.attempts() == 1),
        "refused once, never retried: {jobs:#?}"
    );
}
