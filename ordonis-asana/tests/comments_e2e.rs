//! Comments end to end through FakeAsana over HTTP: an agent's comment becomes one story with
//! its attribution line and marker, its story event confirms it (never a second CollabHub
//! comment), a lost post answer makes no duplicate, and a person's reply, edit (whose event
//! names no parent) and deletion come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Site;
use ordonis_core::{
    Actor, ActorKind, CommentSyncState, Error, Ledger, Op, Outcome, Principal, Store, TaskComment,
};
use ordonis_fakes::asana::FakeAsana;
use serde_json::json;

fn agent() -> Actor {
    Actor::agent(
        "agt_triage",
        vec![Principal {
            kind: ActorKind::Human,
            id: "usr_alice".into(),
            grant: None,
            display_name: Some("Alice Smith".into()),
        }],
    )
    .named("Triage bot")
}

async fn comments(site: &Site, gid: &str) -> Vec<TaskComment> {
    let task = site.task(gid).await.unwrap();
    site.engine.comments(&site.ws, task.id).await.unwrap()
}

async fn comment_ops(site: &Site, gid: &str) -> Vec<(Op, Outcome)> {
    let task = site.task(gid).await.unwrap();
    site.store
        .task_ledger(&site.ws, task.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.op.is_comment())
        .map(|e| (e.record.op, e.record.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_travel_both_ways_through_asana_exactly_once() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    let site = Site::start(&fake, &p, json!({"projects": [p]}), "ws-asana-comments").await;
    let gid = fake.create_task_in(&p, "Plan the launch").await;
    site.settle(&fake).await;
    let task = site.task(&gid).await.unwrap();

    // The agent comments for Alice; the first post's answer is lost.
    fake.lose_next_story_answer(1);
    let r = site
        .engine
        .add_comment(
            &site.ws,
            task.id,
            &agent(),
            "Drafted the plan: see *the doc*.",
        )
        .await
        .unwrap();
    for _ in 0..40 {
        site.settle(&fake).await;
        let c = site.store.comment(r.comment_id).await.unwrap().unwrap();
        if c.sync.as_ref().unwrap().state == CommentSyncState::Confirmed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stories: Vec<_> = fake
        .stories(&gid)
        .into_iter()
        .filter(|s| s["resource_subtype"] == "comment_added")
        .collect();
    assert_eq!(stories.len(), 1, "{stories:#?}");
    let text = stories[0]["text"].as_str().unwrap();
    assert!(text.contains("Drafted the plan"), "{text}");
    assert!(
        text.contains("— Triage bot (agent) for Alice Smith · ledger entry"),
        "{text}"
    );
    assert!(text.ends_with(&format!("ref {}", r.comment_id)), "{text}");
    let ours = comments(&site, &gid).await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].external_id.as_deref(), stories[0]["gid"].as_str());
    assert_eq!(
        ours[0].sync.as_ref().unwrap().state,
        CommentSyncState::Confirmed
    );

    // A person replies, edits (the event names no parent) and deletes.
    let sgid = fake
        .comment_as(&gid, "u-bob", "Bob Jones", "Can we move it to Friday?")
        .await;
    site.settle(&fake).await;
    let got = comments(&site, &gid).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let bob = got.iter().find(|c| c.source == "asana").unwrap();
    assert_eq!(bob.author.id, "u-bob");
    assert_eq!(bob.body, "Can we move it to Friday?");
    let refused = site
        .engine
        .delete_comment(&site.ws, bob.id, &agent())
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused:?}");

    assert!(
        fake.edit_comment_as(&sgid, "u-bob", "Can we move it to Monday?")
            .await
    );
    site.settle(&fake).await;
    let bob = comments(&site, &gid)
        .await
        .into_iter()
        .find(|c| c.source == "asana")
        .unwrap();
    assert_eq!(bob.body, "Can we move it to Monday?");

    assert!(fake.delete_comment_as(&sgid, "u-bob").await);
    site.settle(&fake).await;
    let bob = comments(&site, &gid)
        .await
        .into_iter()
        .find(|c| c.source == "asana")
        .unwrap();
    assert!(bob.deleted);
    assert_eq!(
        comment_ops(&site, &gid).await,
        vec![
            (Op::CommentAdd, Outcome::Applied),
            (Op::CommentAdd, Outcome::Confirmed),
            (Op::CommentAdd, Outcome::Applied),
            (Op::CommentEdit, Outcome::Applied),
            (Op::CommentDelete, Outcome::Applied),
        ]
    );
}
