//! Membership, end to end over real HTTP (FakeAsana, its project webhooks, the engine's
//! route, the memory store and a worker): a task removed from the project in scope stops
//! syncing, recorded in the ledger, and syncs again when it is added back; the two events
//! converge in either order; subtasks (whose events Asana's project webhooks do send) are
//! not top-level tasks unless the scope says `"subtasks": true`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordonis_core::{Actor, Error, FieldPatch, FieldValue, Op};
use ordonis_fakes::asana::FakeAsana;
use serde_json::json;

use common::{Site, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_removed_from_the_project_stops_syncing_and_resumes_when_added_back() {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let (a, other) = (fake.add_project("Launch"), fake.add_project("Elsewhere"));
    let site = Site::start(&fake, &a, json!({"projects": [a]}), "ws-members").await;

    let gid = fake.create_task_in(&a, "Plan the launch").await;
    site.drain().await;
    let task = site
        .task(&gid)
        .await
        .expect("a task added to the project syncs");
    assert!(!task.out_of_scope);

    // Moved to another project: the `removed` event reaches our webhook, the fetch shows
    // where the task is now, and the task stops syncing, recorded once in the ledger.
    fake.add_to_project(&gid, &other).await.unwrap();
    assert_eq!(fake.remove_from_project(&gid, &a).await, Some(1));
    site.drain().await;
    let left = site.task(&gid).await.unwrap();
    assert!(left.out_of_scope, "removed from the project in scope");
    let ops = site.ops(&left).await;
    let leave: Vec<&(Op, String)> = ops.iter().filter(|(o, _)| *o == Op::LeaveScope).collect();
    assert_eq!(leave.len(), 1, "{ops:?}");
    assert!(
        leave[0].1.contains("removed from the scope's projects")
            && leave[0].1.contains("Elsewhere"),
        "{}",
        leave[0].1
    );

    // Not synced while out: a CollabHub edit is refused (nothing reaches Asana), and an
    // Asana edit made meanwhile is not delivered to our project's webhook.
    let puts = fake.puts().len();
    let refused = site
        .engine
        .change_task(
            &site.ws,
            left.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(FieldValue::Title("Ours".into())),
        )
        .await;
    assert!(matches!(refused, Err(Error::Invalid(_))), "{refused:?}");
    fake.change_task(&gid, json!({"name": "Plan the launch (moved)"}))
        .await;
    site.drain().await;
    assert_eq!(fake.puts().len(), puts);
    assert_eq!(
        site.task(&gid).await.unwrap().fields.title,
        "Plan the launch"
    );

    // Added back: in scope again, recorded, and the state Asana has now is applied.
    assert_eq!(fake.add_to_project(&gid, &a).await, Some(1));
    site.drain().await;
    let back = site.task(&gid).await.unwrap();
    assert!(!back.out_of_scope);
    assert_eq!(back.fields.title, "Plan the launch (moved)");
    let ops = site.ops(&back).await;
    assert_eq!(
        ops.iter().filter(|(o, _)| *o == Op::EnterScope).count(),
        1,
        "{ops:?}"
    );

    // A late `removed` (delivered after the `added`, as retries may) changes nothing: the
    // fetch says the task is in the project.
    let late = json!({"events": [{
        "user": {"gid": "1000000000000002", "resource_type": "user"},
        "created_at": "2026-12-01T00:00:00.000Z",
        "action": "removed",
        "resource": {"gid": gid, "resource_type": "task", "resource_subtype": "default_task"},
        "parent": {"gid": a, "resource_type": "project"}
    }]});
    assert_eq!(fake.deliver_raw(late.to_string().as_bytes()).await, 1);
    site.drain().await;
    let after = site.task(&gid).await.unwrap();
    assert!(
        !after.out_of_scope,
        "a stale removal does not take the task out"
    );
    assert_eq!(site.ops(&after).await.len(), ops.len());

    // And it is synced again both ways.
    site.engine
        .change_task(
            &site.ws,
            after.id,
            &Actor::human("u-1"),
            &FieldPatch::new().with(FieldValue::Title("Plan the launch, again".into())),
        )
        .await
        .unwrap();
    // The push is echoed back in the background: wait for it before reading the inbox.
    site.settle(&fake).await;
    assert_eq!(fake.task(&gid).unwrap()["name"], "Plan the launch, again");
    site.notes().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtasks_are_not_tasks_unless_the_scope_says_so() {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let a = fake.add_project("Launch");
    let plain = Site::start(&fake, &a, json!({"projects": [a]}), "ws-plain").await;
    let with_subtasks = Site::start(
        &fake,
        &a,
        json!({"projects": [a], "subtasks": true}),
        "ws-subtasks",
    )
    .await;

    let parent = fake.create_task_in(&a, "Ship it").await;
    let sub = fake
        .create_subtask(&parent, "Write the notes")
        .await
        .unwrap();
    // A subtask's own change reaches the parent's project webhooks, as in Asana.
    assert_eq!(
        fake.change_task(&sub, json!({"name": "Write the release notes"}))
            .await,
        Some(2)
    );
    plain.drain().await;
    with_subtasks.drain().await;

    assert!(plain.task(&parent).await.is_some());
    assert!(
        plain.task(&sub).await.is_none(),
        "a subtask is not a top-level task by default"
    );
    let notes = plain.notes().await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("not imported, out of scope") && n.contains("subtask")),
        "{notes:?}"
    );

    let synced = with_subtasks
        .task(&sub)
        .await
        .expect("with \"subtasks\": true the subtask syncs");
    assert_eq!(synced.fields.title, "Write the release notes");
    assert!(with_subtasks.task(&parent).await.is_some());
    with_subtasks.notes().await;
}
