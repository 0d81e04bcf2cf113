//! Creating work in Asana from CollabHub, end to end through FakeAsana over HTTP: a person
//! files a task and exactly one Asana task appears although the create's answer is lost; an
//! agent files a subtask under it; the people directory matches an Asana account to its
//! principal by e-mail, so the principal can be assigned (Asana gets their gid) and their
//! edit in Asana is attributed to them in the ledger; link and unlink.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Site;
use ordonis_core::{
    Actor, ActorKind, CreateState, FieldPatch, FieldValue, Ledger, NewLink, Op, Outcome, Person,
    PersonKind, Principal, Store, StoreExt, Task, TaskId,
};
use ordonis_fakes::asana::FakeAsana;
use serde_json::json;

fn alice() -> Actor {
    Actor::human("usr_alice").named("Alice Smith")
}

fn agent() -> Actor {
    Actor::agent(
        "agt_planner",
        vec![Principal {
            kind: ActorKind::Human,
            id: "usr_alice".into(),
            grant: None,
            display_name: Some("Alice Smith".into()),
        }],
    )
    .named("Planner")
}

fn title(t: &str) -> FieldPatch {
    let mut p = FieldPatch::new();
    p.set(FieldValue::Title(t.to_owned()));
    p
}

/// Retries within milliseconds: a lost answer's job is retried at once.
fn fast() -> ordonis_core::EngineConfig {
    ordonis_core::EngineConfig {
        backoff: ordonis_core::Backoff {
            min: std::time::Duration::from_millis(5),
            max: std::time::Duration::from_millis(20),
        },
        ..ordonis_core::EngineConfig::default()
    }
}

/// Runs workers until the task's create is no longer pending and its pushes are done.
async fn created(site: &Site, fake: &FakeAsana, id: TaskId) -> Task {
    for _ in 0..60 {
        site.settle(fake).await;
        let t = site.store.task(id).await.unwrap().unwrap();
        let busy = site
            .store
            .jobs(&ordonis_core::JobFilter::new(ordonis_core::Queue::Outbox))
            .await
            .unwrap()
            .iter()
            .any(|j| {
                j.clone().into_push().is_some_and(|p| p.task_id == id)
                    && j.state() != ordonis_core::JobState::Done
            });
        if !busy
            && t.create
                .as_ref()
                .is_some_and(|c| c.state != CreateState::Pending)
        {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the create did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_filed_in_collabhub_reaches_asana_once_and_people_are_matched() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    let site = Site::start_with(
        &fake,
        &p,
        json!({"projects": [p]}),
        "ws-asana-create",
        fast(),
    )
    .await;
    let link = |parent: Option<String>| NewLink {
        integration_id: site.integration,
        project: None,
        issue_type: None,
        parent,
    };

    // 1. Alice files a task; the create's first answer is lost.
    fake.lose_next_create_answer(1);
    let r = site
        .engine
        .create_task(
            &site.ws,
            &alice(),
            &title("Ship the launch page"),
            Some(link(None)),
        )
        .await
        .unwrap();
    assert!(r.create_queued);
    let task = created(&site, &fake, r.task_id).await;
    assert_eq!(task.create.as_ref().unwrap().state, CreateState::Created);
    let ext = task.link().expect("linked to the created task").clone();
    let marker = format!("ordonis:{}", task.id);
    assert_eq!(fake.tasks_with_external(&marker), 1);
    assert_eq!(fake.tasks_named("Ship the launch page"), 1, "exactly one");
    assert_eq!(
        fake.task(&ext.key.external_id).unwrap()["external"]["gid"],
        marker.as_str()
    );
    assert!(ext.url.is_some());
    // Its webhook joined this task: no second CollabHub task for the same Asana task.
    let all = site.store.all_tasks(&site.ws).await.unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    let ops = site.ops(&task).await;
    assert!(
        ops.iter()
            .any(|(op, rule)| *op == Op::Link && rule == "created in the provider"),
        "{ops:?}"
    );

    // 2. The agent files a subtask under it, naming the CollabHub task as the parent.
    let sub = site
        .engine
        .create_task(
            &site.ws,
            &agent(),
            &title("Write the copy"),
            Some(link(Some(task.id.to_string()))),
        )
        .await
        .unwrap();
    let subtask = created(&site, &fake, sub.task_id).await;
    let sub_gid = subtask.link().unwrap().key.external_id.clone();
    assert_eq!(
        fake.task(&sub_gid).unwrap()["parent"]["gid"],
        ext.key.external_id.as_str()
    );
    let entries = site.store.task_ledger(&site.ws, sub.task_id).await.unwrap();
    assert_eq!(
        entries[0].record.actor.id, "agt_planner",
        "filed by the agent"
    );

    // 3. Bob edits the task in Asana: his account is seen (read with its e-mail) and
    //    matched by e-mail to the principal usr_bob.
    let bob = fake.add_user("Bob Jones", "Bob@Example.com");
    site.engine
        .put_person(Person {
            workspace_id: site.ws.clone(),
            principal: "usr_bob".into(),
            kind: PersonKind::Human,
            display_name: "Bob Jones".into(),
            emails: vec!["bob@example.com".into()],
            accounts: Vec::new(),
        })
        .await
        .unwrap();
    fake.change_task_as(
        &ext.key.external_id,
        &bob,
        json!({"name": "Ship the launch page v2"}),
    )
    .await
    .unwrap();
    site.settle(&fake).await;
    let entries = site.store.task_ledger(&site.ws, task.id).await.unwrap();
    let edit = entries
        .iter()
        .find(|e| {
            e.record.op == Op::Set
                && e.record.after == Some(FieldValue::Title("Ship the launch page v2".into()))
        })
        .expect("the edit is in the ledger");
    assert_eq!(
        edit.record.actor.id, "usr_bob",
        "attributed to the principal"
    );
    assert_eq!(edit.record.actor.display_name.as_deref(), Some("Bob Jones"));
    assert_eq!(edit.record.actor.provider, "asana");
    assert_eq!(edit.record.actor.account.as_deref(), Some(bob.as_str()));
    let people = site.engine.people(&site.ws).await.unwrap();
    let bob_view = people
        .people
        .iter()
        .find(|p| p.principal == "usr_bob")
        .unwrap();
    assert_eq!(bob_view.accounts.len(), 1);
    assert_eq!(bob_view.accounts[0].account_id, bob);
    assert_eq!(bob_view.accounts[0].matched_by, "email");

    // 4. Alice assigns the task to usr_bob: Asana gets Bob's gid.
    let assignee = site
        .engine
        .assignee_for(&site.ws, task.id, "usr_bob")
        .await
        .unwrap();
    assert_eq!(assignee.account_id, bob);
    let mut patch = FieldPatch::new();
    patch.set(FieldValue::Assignee(Some(assignee)));
    site.engine
        .change_task(&site.ws, task.id, &alice(), &patch)
        .await
        .unwrap();
    site.settle(&fake).await;
    assert_eq!(
        fake.task(&ext.key.external_id).unwrap()["assignee"]["gid"],
        bob.as_str()
    );
    // An agent principal (an Asana AI teammate, mapped by hand) may be the assignee too.
    let teammate = fake.add_agent("Asana AI");
    site.engine
        .put_person(Person {
            workspace_id: site.ws.clone(),
            principal: "agt_asana_ai".into(),
            kind: PersonKind::Agent,
            display_name: "Asana AI".into(),
            emails: Vec::new(),
            accounts: vec![ordonis_core::AccountRef {
                integration_id: site.integration,
                account_id: teammate.clone(),
            }],
        })
        .await
        .unwrap();
    let to_agent = site
        .engine
        .assignee_for(&site.ws, subtask.id, "agt_asana_ai")
        .await
        .unwrap();
    site.engine
        .change_task(
            &site.ws,
            subtask.id,
            &alice(),
            &FieldPatch::new().with(FieldValue::Assignee(Some(to_agent))),
        )
        .await
        .unwrap();
    site.settle(&fake).await;
    let assigned = &fake.task(&sub_gid).unwrap()["assignee"];
    assert_eq!(assigned["gid"], teammate.as_str());
    assert_eq!(assigned["resource_type"], "agent");

    // A principal without an Asana account is refused in advance, with the reason.
    site.engine
        .put_person(Person {
            workspace_id: site.ws.clone(),
            principal: "usr_carol".into(),
            kind: PersonKind::Human,
            display_name: "Carol".into(),
            emails: vec!["carol@example.com".into()],
            accounts: Vec::new(),
        })
        .await
        .unwrap();
    let err = site
        .engine
        .assignee_for(&site.ws, task.id, "usr_carol")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no account"), "{err}");

    // 5. Unlink stops the sync; link makes it sync again, in the ledger both times.
    let t = site
        .engine
        .unlink_task(&site.ws, task.id, &alice(), site.integration)
        .await
        .unwrap();
    assert!(t.link().is_none());
    fake.change_task(
        &ext.key.external_id,
        json!({"name": "Renamed while unlinked"}),
    )
    .await;
    site.settle(&fake).await;
    let t = site.store.task(task.id).await.unwrap().unwrap();
    assert_eq!(
        t.fields.title, "Ship the launch page v2",
        "no longer synced"
    );
    assert_eq!(
        site.store.all_tasks(&site.ws).await.unwrap().len(),
        2,
        "the unlinked object is not imported again as another task"
    );
    let t = site
        .engine
        .link_task(
            &site.ws,
            task.id,
            &alice(),
            site.integration,
            &ext.key.external_id,
        )
        .await
        .unwrap();
    assert_eq!(t.fields.title, "Renamed while unlinked", "merged on link");
    let ops: Vec<(Op, Outcome)> = site
        .store
        .task_ledger(&site.ws, task.id)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.record.op, e.record.outcome))
        .collect();
    assert!(ops.contains(&(Op::Unlink, Outcome::Applied)), "{ops:?}");
    assert_eq!(
        ops.iter().filter(|(op, _)| *op == Op::Link).count(),
        2,
        "created, then linked again: {ops:?}"
    );
    // Linking the subtask's object to the parent task is a conflict naming the subtask.
    let err = site
        .engine
        .unlink_task(&site.ws, task.id, &alice(), site.integration)
        .await
        .map(|_| ());
    assert!(err.is_ok());
    let err = site
        .engine
        .link_task(&site.ws, task.id, &alice(), site.integration, &sub_gid)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&sub.task_id.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_the_token_may_not_make_is_refused_once_with_the_reason() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    let site = Site::start_with(
        &fake,
        &p,
        json!({"projects": [p]}),
        "ws-asana-refused",
        fast(),
    )
    .await;
    fake.deny_create_in(&p);
    let r = site
        .engine
        .create_task(
            &site.ws,
            &alice(),
            &title("Not allowed"),
            Some(NewLink {
                integration_id: site.integration,
                project: None,
                issue_type: None,
                parent: None,
            }),
        )
        .await
        .unwrap();
    let task = created(&site, &fake, r.task_id).await;
    let create = task.create.unwrap();
    assert_eq!(create.state, CreateState::Refused);
    let why = create.error.unwrap_or_default();
    assert!(why.contains("refused") || why.contains("403"), "{why}");
    assert_eq!(fake.tasks_named("Not allowed"), 0);
    let entries = site.store.task_ledger(&site.ws, r.task_id).await.unwrap();
    let rejected = entries
        .iter()
        .find(|e| e.record.op == Op::Link)
        .expect("a link entry");
    assert_eq!(rejected.record.outcome, Outcome::Rejected);
    // Not retried: the push job is done, not failing.
    let pushes = site
        .store
        .jobs(&ordonis_core::JobFilter::new(ordonis_core::Queue::Outbox))
        .await
        .unwrap();
    assert!(
        pushes
            .iter()
            .all(|j| j.state() == ordonis_core::JobState::Done),
        "{pushes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_answer_without_its_webhook_is_found_by_marker_not_made_twice() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    let site = Site::start_with(&fake, &p, json!({"projects": [p]}), "ws-asana-lost", fast()).await;
    // No webhook reaches us, and the first two creates' answers are lost.
    fake.set_echo(false);
    fake.lose_next_create_answer(2);
    let r = site
        .engine
        .create_task(
            &site.ws,
            &alice(),
            &title("Only once"),
            Some(NewLink {
                integration_id: site.integration,
                project: None,
                issue_type: None,
                parent: None,
            }),
        )
        .await
        .unwrap();
    let task = created(&site, &fake, r.task_id).await;
    assert_eq!(task.create.as_ref().unwrap().state, CreateState::Created);
    assert_eq!(
        fake.tasks_named("Only once"),
        1,
        "found by its marker, not made again"
    );
    let gid = &task.link().unwrap().key.external_id;
    assert_eq!(
        fake.task(gid).unwrap()["external"]["gid"],
        format!("ordonis:{}", task.id).as_str()
    );
}
