//! Comments end to end through FakeJira over HTTP: an agent comments for a person through the
//! engine, the comment appears in Jira once with its attribution line and marker property,
//! its echo confirms it (never a second CollabHub comment), a lost post answer makes no
//! duplicate, and a person's reply, edit and deletion in Jira come back (duplicated and
//! replayed webhooks included) with their ledger entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::site::{agent, site, site_with, text_of};
use ordonis_core::{
    CommentSettings, CommentSyncState, Direction, Error, Op, Outcome, Store, StoreExt,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_comment_reaches_jira_once_with_its_attribution_and_is_confirmed() {
    let s = site().await;
    let task = s.task().await;
    let receipt = s
        .engine
        .add_comment(
            &s.ws,
            task.id,
            &agent(),
            "I reproduced it on **Safari 17**.",
        )
        .await
        .unwrap();
    assert!(receipt.push_queued);
    assert_eq!(receipt.entries.len(), 1);
    let idx = receipt.entries[0].idx;
    s.settle().await;

    // Once in Jira, with the attribution line, its ledger entry and receipt, and our marker.
    let in_jira = s.jira.comments("10001");
    assert_eq!(in_jira.len(), 1, "{in_jira:#?}");
    let text = text_of(&in_jira[0]["body"]);
    assert!(text.contains("I reproduced it on"), "{text}");
    assert!(
        text.contains(&format!(
            "— Triage bot (agent) for Alice Smith · ledger entry {idx}"
        )),
        "{text}"
    );
    let body = in_jira[0]["body"].to_string();
    assert!(
        body.contains(&format!(
            "https://sync.example.com/api/ledger/ws-jira-e2e/proof/{idx}"
        )),
        "{body}"
    );
    assert_eq!(
        in_jira[0]["properties"][0]["value"]["comment_id"],
        json!(receipt.comment_id.to_string())
    );

    // Its echo confirmed it: one CollabHub comment, with Jira's id.
    let ours = s.comments().await;
    assert_eq!(ours.len(), 1, "{ours:#?}");
    assert_eq!(ours[0].external_id.as_deref(), in_jira[0]["id"].as_str());
    let sync = ours[0].sync.clone().unwrap();
    assert_eq!(sync.state, CommentSyncState::Confirmed, "{sync:?}");
    assert_eq!(ours[0].body, "I reproduced it on **Safari 17**.");

    // The ledger: the agent's add (for Alice), then the echo's confirmation naming Jira's id.
    let entries = s.comment_entries().await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[0].record.op, Op::CommentAdd);
    assert_eq!(entries[0].record.outcome, Outcome::Applied);
    assert_eq!(entries[0].record.actor.id, "agt_triage");
    assert_eq!(entries[0].record.actor.on_behalf_of[0].id, "usr_alice");
    assert_eq!(entries[1].record.outcome, Outcome::Confirmed);
    assert_eq!(
        entries[1].record.comment.as_ref().unwrap().external_id,
        ours[0].external_id
    );

    // A duplicated delivery of the echo changes nothing.
    let replays = s.seen.lock().unwrap().clone();
    for body in &replays {
        s.ingest(body).await;
    }
    s.settle().await;
    assert_eq!(s.comments().await.len(), 1);
    assert_eq!(s.comment_entries().await.len(), 2);

    // The agent edits, then deletes its comment: Jira follows.
    let id = receipt.comment_id;
    s.engine
        .edit_comment(&s.ws, id, &agent(), "Reproduced on Safari 17 and 18.")
        .await
        .unwrap();
    s.settle().await;
    let texts = s.jira_texts();
    assert_eq!(texts.len(), 1);
    assert!(texts[0].contains("Safari 17 and 18"), "{texts:?}");
    assert!(texts[0].contains("Triage bot (agent) for Alice Smith"));
    s.engine.delete_comment(&s.ws, id, &agent()).await.unwrap();
    s.settle().await;
    assert!(s.jira_texts().is_empty());
    let after = s.comments().await;
    assert!(after[0].deleted);
    assert_eq!(
        after[0].sync.as_ref().unwrap().state,
        CommentSyncState::Confirmed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_post_answer_makes_no_duplicate() {
    let s = site().await;
    let task = s.task().await;
    s.jira.lose_next_comment_answer(2);
    s.engine
        .add_comment(&s.ws, task.id, &agent(), "Taking this one.")
        .await
        .unwrap();
    s.settle().await;
    // The first post made the comment and lost its answer; every retry found it first.
    assert_eq!(s.jira.comments("10001").len(), 1);
    let ours = s.comments().await;
    assert_eq!(ours.len(), 1);
    assert!(ours[0].external_id.is_some());
    assert_eq!(
        ours[0].sync.as_ref().unwrap().state,
        CommentSyncState::Confirmed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_reply_edit_and_deletion_come_back_and_replays_converge() {
    let s = site().await;
    let cid = s
        .jira
        .comment_as("10001", "acc-bob", "Bob Jones", "Still broken for me")
        .await;
    s.settle().await;
    let got = s.comments().await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].source, "jira");
    assert_eq!(got[0].author.id, "acc-bob");
    assert_eq!(got[0].author.display_name.as_deref(), Some("Bob Jones"));
    assert_eq!(got[0].body, "Still broken for me");
    assert_eq!(got[0].external_id.as_deref(), Some(cid.as_str()));
    let created = s.seen.lock().unwrap().clone();

    // Someone else's comment cannot be edited or deleted from CollabHub.
    let refused = s
        .engine
        .edit_comment(&s.ws, got[0].id, &agent(), "rewritten")
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Conflict(_)), "{refused:?}");

    // An edit, then a replay of the creation webhook: the older state is a no-op.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        s.jira
            .edit_comment_as("10001", &cid, "acc-bob", "Still broken on Safari")
            .await
    );
    s.settle().await;
    for body in &created {
        s.ingest(body).await;
    }
    s.settle().await;
    let got = s.comments().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "Still broken on Safari");
    assert!(got[0].edited_at.is_some());

    // A deletion wins over a late edit webhook.
    let edits = s.seen.lock().unwrap().clone();
    assert!(s.jira.delete_comment_as("10001", &cid, "acc-bob").await);
    s.settle().await;
    for body in &edits {
        s.ingest(body).await;
    }
    s.settle().await;
    let got = s.comments().await;
    assert_eq!(got.len(), 1);
    assert!(got[0].deleted);

    // One entry per decision: add, edit, delete, each by Bob's account (the deletion's by
    // whoever Jira says, here nobody: the webhook names no user).
    let ops: Vec<(Op, Outcome)> = s
        .comment_entries()
        .await
        .iter()
        .map(|e| (e.record.op, e.record.outcome))
        .collect();
    assert_eq!(
        ops,
        vec![
            (Op::CommentAdd, Outcome::Applied),
            (Op::CommentEdit, Outcome::Applied),
            (Op::CommentDelete, Outcome::Applied),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_comments_are_refused_with_a_reason() {
    let s = site().await;
    let task = s.task().await;
    for bad in ["", "  \n ", "bell\u{7}"] {
        let e = s
            .engine
            .add_comment(&s.ws, task.id, &agent(), bad)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{bad:?}: {e:?}");
    }
    // Over Jira's 32,767 characters: stored as written, refused by Jira with its reason.
    let long = "x".repeat(40_000);
    let r = s
        .engine
        .add_comment(&s.ws, task.id, &agent(), &long)
        .await
        .unwrap();
    s.settle().await;
    assert!(s.jira.comments("10001").is_empty());
    let c = s.store.comment(r.comment_id).await.unwrap().unwrap();
    assert_eq!(c.body.len(), 40_000);
    let sync = c.sync.unwrap();
    assert_eq!(sync.state, CommentSyncState::Refused);
    assert!(sync.error.is_some());
    let rejected = s
        .comment_entries()
        .await
        .into_iter()
        .filter(|e| e.record.outcome == Outcome::Rejected)
        .count();
    assert_eq!(rejected, 1);
}

/// The comment direction of the integration decides what flows: `inbound_only` reads
/// people's comments and pushes none of ours, `outbound_only` the reverse, `off` neither;
/// a comment that does not flow stays in CollabHub with no sync state, and an event that is
/// not applied says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comment_direction_decides_what_flows() {
    for direction in [
        Direction::InboundOnly,
        Direction::OutboundOnly,
        Direction::Off,
    ] {
        let s = site_with(|c| c.comments = CommentSettings { direction }).await;
        let task = s.task().await;
        let r = s
            .engine
            .add_comment(&s.ws, task.id, &agent(), "From CollabHub")
            .await
            .unwrap();
        assert_eq!(r.push_queued, direction.outbound(), "{direction:?}");
        s.jira
            .comment_as("10001", "acc-bob", "Bob Jones", "From Jira")
            .await;
        s.settle().await;
        let in_jira = s.jira.comments("10001");
        let ours_in_jira = in_jira.len() - 1;
        assert_eq!(
            ours_in_jira,
            usize::from(direction.outbound()),
            "{direction:?}"
        );
        let stored = s.comments().await;
        let theirs = stored.iter().filter(|c| c.source == "jira").count();
        assert_eq!(theirs, usize::from(direction.inbound()), "{direction:?}");
        let ours = stored.iter().find(|c| c.id == r.comment_id).unwrap();
        assert_eq!(ours.sync.is_some(), direction.outbound(), "{direction:?}");
        // Outbound only still reads its own echo, to confirm it.
        if let Some(sync) = &ours.sync {
            assert_eq!(sync.state, CommentSyncState::Confirmed, "{direction:?}");
        }
        if !direction.inbound() {
            let notes: Vec<String> = s
                .store
                .events(&s.ws, &ordonis_core::EventFilter::default())
                .await
                .unwrap()
                .into_iter()
                .filter_map(|e| e.last_error)
                .collect();
            assert!(
                notes.iter().any(|n| n.contains("do not sync")),
                "{direction:?}: {notes:?}"
            );
        }
    }
}
