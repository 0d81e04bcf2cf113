//! Creating tasks through the Asana adapter's `CreateProvider`, and reading accounts through
//! its `AccountProvider`, against the fake Asana over real HTTP: the marker in
//! `external.gid`, a lost answer found again (exactly one task), typed refusals, subtasks,
//! the `name` marker for personal access tokens, users and agents (AI teammates).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TOKEN, ctx};
use ordonis_asana::AsanaProvider;
use ordonis_core::{
    Assignee, CreateDraft, Field, FieldPatch, FieldValue, PersonKind, Provider, ProviderContext,
    ProviderError, Status, StatusCategory,
};
use ordonis_fakes::asana::{API_USER, FakeAsana, HUMAN_USER};
use serde_json::{Value, json};

async fn site(options: Value) -> (FakeAsana, AsanaProvider, ProviderContext, String) {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let project = fake.add_project("Engineering");
    let p = AsanaProvider::new().unwrap();
    let mut c = ctx(&fake.base_url(), options);
    c.scope = json!({"projects": [project]});
    (fake, p, c, project)
}

fn title(t: &str) -> FieldPatch {
    FieldPatch::new().with(FieldValue::Title(t.into()))
}

fn draft<'a>(marker: &'a str, fields: &'a FieldPatch) -> CreateDraft<'a> {
    CreateDraft {
        marker,
        fields,
        project: None,
        issue_type: None,
        parent: None,
    }
}

fn member_of(task: &Value) -> Vec<String> {
    task["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["project"]["gid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_create_carries_the_marker_and_answers_gid_and_url() {
    let (fake, p, c, project) = site(json!({})).await;
    let fields = title("Login fails on Safari")
        .with(FieldValue::Description("Steps:\n\n- open **login**".into()))
        .with(FieldValue::DueDate(Some(
            time::Date::from_calendar_date(2026, time::Month::December, 24).unwrap(),
        )))
        .with(FieldValue::Assignee(Some(Assignee {
            account_id: HUMAN_USER.into(),
            display_name: None,
            email: None,
        })))
        .with(FieldValue::Status(Status::new(
            StatusCategory::Done,
            "Done",
        )));
    let made = p
        .creates()
        .unwrap()
        .create_task(&c, &draft("tsk_0193ab-01", &fields))
        .await
        .unwrap();
    let gid = made.key.external_id.clone();
    assert_eq!(made.key.object_type, "task");
    assert_eq!(
        made.url.as_deref(),
        Some(format!("https://app.asana.com/0/0/{gid}").as_str())
    );
    assert_eq!(
        made.fields.get(Field::Title),
        Some(&FieldValue::Title("Login fails on Safari".into()))
    );
    assert_eq!(
        made.fields.get(Field::Description),
        Some(&FieldValue::Description(
            "Steps:\n\n- open **login**".into()
        ))
    );
    assert!(matches!(
        made.fields.get(Field::Status),
        Some(FieldValue::Status(s)) if s.category == StatusCategory::Done
    ));
    let stored = fake.task(&gid).unwrap();
    assert_eq!(stored["external"]["gid"], "ordonis:tsk_0193ab-01");
    assert_eq!(stored["created_by"]["gid"], API_USER);
    assert_eq!(stored["assignee"]["gid"], HUMAN_USER);
    assert_eq!(stored["due_on"], "2026-12-24");
    assert_eq!(stored["completed"], true);
    assert_eq!(member_of(&stored), vec![project.clone()]);
    // Asana's events for a new task in a project: `added`, the project as the parent.
    let events = fake.events_of(&project);
    assert!(
        events.iter().any(|e| e["action"] == "added"
            && e["resource"]["gid"] == gid.as_str()
            && e["parent"]["gid"] == project.as_str()),
        "{events:?}"
    );
    assert_eq!(fake.tasks_with_external("ordonis:tsk_0193ab-01"), 1);
}

#[tokio::test]
async fn a_lost_answer_is_found_by_its_marker_and_not_created_twice() {
    let (fake, p, c, _) = site(json!({})).await;
    let creates = p.creates().unwrap();
    let fields = title("Crash on save");
    let d = draft("tsk_lost-1", &fields);
    let before = fake.now().unix_timestamp() * 1000;
    fake.lose_next_create_answer(1);
    let err = creates.create_task(&c, &d).await.unwrap_err();
    assert!(matches!(err, ProviderError::Retryable { .. }), "{err:?}");
    assert_eq!(fake.tasks_with_external("ordonis:tsk_lost-1"), 1);
    let found = creates.find_created(&c, &d, before).await.unwrap().unwrap();
    let stored = fake.task(&found.key.external_id).unwrap();
    assert_eq!(stored["external"]["gid"], "ordonis:tsk_lost-1");
    assert_eq!(
        found.fields.get(Field::Title),
        Some(&FieldValue::Title("Crash on save".into()))
    );
    // Another marker finds nothing, though a task of the same name exists.
    let other = draft("tsk_lost-2", &fields);
    assert_eq!(
        creates.find_created(&c, &other, before).await.unwrap(),
        None
    );
    assert_eq!(fake.tasks_with_external("ordonis:tsk_lost-1"), 1);
    assert_eq!(fake.tasks_named("Crash on save"), 1);
}

#[tokio::test]
async fn refusals_are_typed_with_asanas_reason() {
    let (fake, p, mut c, project) = site(json!({})).await;
    let creates = p.creates().unwrap();
    let fields = title("Nope");
    let unknown = CreateDraft {
        project: Some("1999999999999999"),
        ..draft("m-2", &fields)
    };
    match creates.create_task(&c, &unknown).await.unwrap_err() {
        ProviderError::Terminal(m) => assert!(m.contains("Unknown object"), "{m}"),
        other => panic!("{other:?}"),
    }
    let unknown_parent = CreateDraft {
        parent: Some("1999999999999998"),
        ..draft("m-3", &fields)
    };
    match creates.create_task(&c, &unknown_parent).await.unwrap_err() {
        ProviderError::Terminal(m) => assert!(m.contains("parent: Unknown object"), "{m}"),
        other => panic!("{other:?}"),
    }
    fake.deny_create_in(&project);
    let err = creates
        .create_task(&c, &draft("m-1", &fields))
        .await
        .unwrap_err();
    match err {
        ProviderError::Forbidden(m) => assert!(m.contains("permission to add tasks"), "{m}"),
        other => panic!("{other:?}"),
    }
    // No project named and none in the scope.
    c.scope = Value::Null;
    match creates
        .create_task(&c, &draft("m-4", &fields))
        .await
        .unwrap_err()
    {
        ProviderError::Terminal(m) => assert!(m.contains("no Asana project"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.tasks_named("Nope"), 0);
}

#[tokio::test]
async fn a_subtask_is_made_under_its_parent() {
    let (fake, p, mut c, project) = site(json!({})).await;
    let parent = fake.seed_task_in(&project, "Epic");
    let creates = p.creates().unwrap();
    let fields = title("Part one");
    let d = CreateDraft {
        parent: Some(&parent),
        ..draft("sub-1", &fields)
    };
    let made = creates.create_task(&c, &d).await.unwrap();
    let stored = fake.task(&made.key.external_id).unwrap();
    assert_eq!(stored["parent"]["gid"], parent.as_str());
    // The scope does not sync subtasks: the subtask is in the project too, so it syncs.
    assert_eq!(member_of(&stored), vec![project.clone()]);
    c.scope = json!({"projects": [project], "subtasks": true});
    let d = CreateDraft {
        parent: Some(&parent),
        ..draft("sub-2", &fields)
    };
    let made = creates.create_task(&c, &d).await.unwrap();
    let stored = fake.task(&made.key.external_id).unwrap();
    assert_eq!(stored["parent"]["gid"], parent.as_str());
    assert!(member_of(&stored).is_empty(), "{stored}");
}

#[tokio::test]
async fn an_agent_can_be_the_assignee_of_a_create() {
    let (fake, p, c, _) = site(json!({})).await;
    let agent = fake.add_agent("Triage bot");
    let fields = title("Triage inbox").with(FieldValue::Assignee(Some(Assignee {
        account_id: agent.clone(),
        display_name: None,
        email: None,
    })));
    let made = p
        .creates()
        .unwrap()
        .create_task(&c, &draft("agent-1", &fields))
        .await
        .unwrap();
    let stored = fake.task(&made.key.external_id).unwrap();
    assert_eq!(stored["assignee"]["gid"], agent.as_str());
    assert_eq!(stored["assignee"]["resource_type"], "agent");
}

#[tokio::test]
async fn accounts_are_users_with_emails_or_agents() {
    let (fake, p, c, _) = site(json!({})).await;
    let accounts = p.accounts().unwrap();
    let ann = fake.add_user("Ann Lee", "ann@example.com");
    let a = accounts.fetch_account(&c, &ann).await.unwrap();
    assert_eq!(a.account_id, ann);
    assert_eq!(a.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(a.email.as_deref(), Some("ann@example.com"));
    assert_eq!(a.kind, PersonKind::Human);
    let bot = fake.add_agent("Triage bot");
    let b = accounts.fetch_account(&c, &bot).await.unwrap();
    assert_eq!(b.display_name.as_deref(), Some("Triage bot"));
    assert_eq!(b.email, None);
    assert_eq!(b.kind, PersonKind::Agent);
    let err = accounts
        .fetch_account(&c, "1999999999999997")
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn the_name_marker_finds_a_lost_create_and_refuses_to_guess() {
    let (fake, p, c, project) = site(json!({"create_marker": "name"})).await;
    let creates = p.creates().unwrap();
    let fields = title("Flaky deploy");
    let d = draft("name-1", &fields);
    // A task of the same name made by a person is never ours.
    let theirs = fake.seed_task_in(&project, "Flaky deploy");
    let before = fake.now().unix_timestamp() * 1000;
    fake.lose_next_create_answer(1);
    let err = creates.create_task(&c, &d).await.unwrap_err();
    assert!(matches!(err, ProviderError::Retryable { .. }), "{err:?}");
    assert_eq!(fake.tasks_named("Flaky deploy"), 2);
    let found = creates.find_created(&c, &d, before).await.unwrap().unwrap();
    assert_ne!(found.key.external_id, theirs);
    let stored = fake.task(&found.key.external_id).unwrap();
    assert_eq!(stored["created_by"]["gid"], API_USER);
    // Nothing is stored as a marker in this mode.
    assert!(stored["external"].is_null(), "{stored}");
    // Another title: nothing.
    let other_fields = title("Something else");
    assert_eq!(
        creates
            .find_created(&c, &draft("name-2", &other_fields), before)
            .await
            .unwrap(),
        None
    );
    // Two creations of the same title in the window: none is adopted, and the error says so.
    creates
        .create_task(&c, &draft("name-3", &fields))
        .await
        .unwrap();
    match creates.find_created(&c, &d, before).await.unwrap_err() {
        ProviderError::Terminal(m) => assert!(m.contains("cannot tell"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_name_marker_finds_a_lost_subtask_among_the_parents() {
    let (fake, p, c, project) = site(json!({"create_marker": "name"})).await;
    let parent = fake.seed_task_in(&project, "Epic");
    let creates = p.creates().unwrap();
    let fields = title("Step 2");
    let d = CreateDraft {
        parent: Some(&parent),
        ..draft("name-sub", &fields)
    };
    let before = fake.now().unix_timestamp() * 1000;
    fake.lose_next_create_answer(1);
    assert!(creates.create_task(&c, &d).await.is_err());
    let found = creates.find_created(&c, &d, before).await.unwrap().unwrap();
    assert_eq!(
        fake.task(&found.key.external_id).unwrap()["parent"]["gid"],
        parent.as_str()
    );
}

#[tokio::test]
async fn an_agents_change_is_attributed_to_an_agent() {
    let (fake, _p, _c, project) = site(json!({})).await;
    let task = fake.seed_task_in(&project, "Investigate");
    let agent = fake.add_agent("Triage bot");
    fake.change_task_as(&task, &agent, json!({"name": "Investigate (triaged)"}))
        .await
        .unwrap();
    let hints = ordonis_asana::webhook::hints_from_events(&fake.events_of(&project));
    let hint = hints
        .iter()
        .find(|h| h.key.external_id == task)
        .expect("the change's hint");
    let actor = hint.actor.as_ref().unwrap();
    assert_eq!(actor.account_id, agent);
    assert_eq!(actor.kind, PersonKind::Agent);
}
