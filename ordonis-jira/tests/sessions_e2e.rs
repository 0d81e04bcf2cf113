//! Agent sessions end to end through FakeJira over HTTP: an agent opens a session for a
//! person, thinks, acts, asks (the question is one attributed comment in Jira), a person's
//! reply in Jira becomes the session's `prompt`, the agent answers and completes; appends are
//! idempotent by id, every step is a ledger entry attributed to the agent for its principal,
//! the host reads them as a feed, and the export verifies offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::site::{agent, site};
use ordonis_core::vera::{CheckpointSigner, ExportCheck, Notary, verify_export_dir};
use ordonis_core::{ActivityContent, ActivityKind, Error, NewActivity, Op, SessionState};

fn activity(id: &str, kind: ActivityKind, body: &str) -> NewActivity {
    NewActivity {
        id: Some(id.to_owned()),
        content: ActivityContent {
            kind,
            body: Some(body.to_owned()),
            action: None,
            parameter: None,
            result: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_works_a_ticket_for_a_person_and_the_ledger_proves_it() {
    let s = site().await;
    let task = s.task().await;
    let feed_start = s.engine.feed(&s.ws, None, 1000).await.unwrap().len() as u64;
    let session = s
        .engine
        .open_session(&s.ws, task.id, &agent())
        .await
        .unwrap();
    assert_eq!(session.state, SessionState::Active);

    // Thoughts and actions stay in CollabHub and the ledger.
    s.engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("a1", ActivityKind::Thought, "The login form posts twice."),
        )
        .await
        .unwrap();
    let action = NewActivity {
        id: Some("a2".into()),
        content: ActivityContent {
            kind: ActivityKind::Action,
            body: None,
            action: Some("search".into()),
            parameter: Some("repo:web login submit".into()),
            result: Some("2 matches".into()),
        },
    };
    s.engine
        .append_activity(&s.ws, session.id, None, action.clone())
        .await
        .unwrap();
    // A retried append answers the first; the same id with another content is refused.
    let again = s
        .engine
        .append_activity(&s.ws, session.id, None, action)
        .await
        .unwrap();
    assert!(again.repeated);
    let clash = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("a2", ActivityKind::Thought, "something else"),
        )
        .await
        .unwrap_err();
    assert!(matches!(clash, Error::Conflict(_)), "{clash:?}");

    // The question: the session waits, and Jira shows one attributed comment.
    let asked = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("a3", ActivityKind::Elicitation, "Which browser do you use?"),
        )
        .await
        .unwrap();
    assert_eq!(asked.state, SessionState::AwaitingInput);
    assert!(asked.comment_id.is_some());
    s.settle().await;
    let texts = s.jira_texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("Question:") && texts[0].contains("Which browser"));
    assert!(
        texts[0].contains("Triage bot (agent) for Alice Smith"),
        "{texts:?}"
    );

    // A person replies in Jira: the reply is the session's prompt, and it is active again.
    s.jira
        .comment_as("10001", "acc-alice", "Alice Smith", "Safari 17 on macOS")
        .await;
    s.settle().await;
    let now = s.engine.session(&s.ws, session.id).await.unwrap();
    assert_eq!(now.state, SessionState::Active);
    let activities = s
        .engine
        .session_activities(&s.ws, session.id)
        .await
        .unwrap();
    let kinds: Vec<ActivityKind> = activities.iter().map(|a| a.content.kind).collect();
    assert_eq!(
        kinds,
        [
            ActivityKind::Thought,
            ActivityKind::Action,
            ActivityKind::Elicitation,
            ActivityKind::Prompt
        ]
    );
    let prompt = activities.last().unwrap();
    assert_eq!(prompt.actor.id, "acc-alice");
    assert_eq!(prompt.content.body.as_deref(), Some("Safari 17 on macOS"));
    // A replayed reply webhook is no second prompt.
    let replays = s.seen.lock().unwrap().clone();
    for body in &replays {
        s.ingest(body).await;
    }
    s.settle().await;
    assert_eq!(
        s.engine
            .session_activities(&s.ws, session.id)
            .await
            .unwrap()
            .len(),
        4
    );

    // The answer, then done; a done session takes no more of the agent's activities.
    s.engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity(
                "a4",
                ActivityKind::Response,
                "Fixed in #412: the form posted twice.",
            ),
        )
        .await
        .unwrap();
    let done = s
        .engine
        .set_session_state(&s.ws, session.id, SessionState::Complete)
        .await
        .unwrap();
    assert_eq!(done.state, SessionState::Complete);
    let late = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("a5", ActivityKind::Thought, "one more thing"),
        )
        .await
        .unwrap_err();
    assert!(matches!(late, Error::Conflict(_)), "{late:?}");
    s.settle().await;
    assert_eq!(s.jira_texts().len(), 3); // the question, Alice's reply, the answer

    // The feed: every step in order, each attributed (the agent for Alice, or Alice).
    let feed = s
        .engine
        .feed(&s.ws, Some(feed_start - 1), 1000)
        .await
        .unwrap();
    let steps: Vec<(Op, String)> = feed
        .iter()
        .filter(|e| e.record.op.is_session())
        .map(|e| (e.record.op, e.record.actor.id.clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (Op::SessionStart, "agt_triage".to_owned()),
            (Op::SessionActivity, "agt_triage".to_owned()),
            (Op::SessionActivity, "agt_triage".to_owned()),
            (Op::SessionActivity, "agt_triage".to_owned()),
            (Op::SessionActivity, "acc-alice".to_owned()),
            (Op::SessionActivity, "agt_triage".to_owned()),
            (Op::SessionState, "agt_triage".to_owned()),
        ]
    );
    assert!(
        feed.iter()
            .filter(|e| e.record.actor.id == "agt_triage")
            .all(|e| e.record.actor.on_behalf_of[0].id == "usr_alice")
    );
    // Paging the feed by the last index seen misses nothing and repeats nothing.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.engine.feed(&s.ws, after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.idx);
        seen.extend(page.iter().map(|e| e.idx));
    }
    let all: Vec<u64> = (0..seen.len() as u64).collect();
    assert_eq!(seen, all);

    // The export verifies offline.
    let signer = CheckpointSigner::from_seed(&[4; 32]);
    let export = Notary::new(&*s.store, &signer).export(&s.ws).await.unwrap();
    let dir = std::env::temp_dir().join(format!("ordonis-sessions-{}", session.id));
    export.write_dir(&dir).unwrap();
    let trusted = signer
        .trusted_keys(&export.checkpoint.checkpoint.origin)
        .unwrap();
    let checked = verify_export_dir(
        &dir,
        &trusted,
        &ExportCheck {
            strict: true,
            ..ExportCheck::default()
        },
    );
    let _ = std::fs::remove_dir_all(&dir);
    let (_, report) = checked.unwrap();
    assert_eq!(report.size, feed.last().unwrap().idx + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_refuse_bad_actors_and_bad_input_and_go_stale() {
    let s = site().await;
    let task = s.task().await;
    let person = ordonis_core::Actor::human("usr_alice");
    assert!(matches!(
        s.engine.open_session(&s.ws, task.id, &person).await,
        Err(Error::Invalid(_))
    ));
    let lonely = ordonis_core::Actor::agent("agt_x", Vec::new());
    assert!(matches!(
        s.engine.open_session(&s.ws, task.id, &lonely).await,
        Err(Error::Invalid(_))
    ));
    let session = s
        .engine
        .open_session(&s.ws, task.id, &agent())
        .await
        .unwrap();
    for url in ["http://example.com/pr/1", "ftp://x/y", "not a url"] {
        assert!(
            matches!(
                s.engine
                    .add_artifact(&s.ws, session.id, "PR", url, None)
                    .await,
                Err(Error::Invalid(_))
            ),
            "{url}"
        );
    }
    let (artifact, idx) = s
        .engine
        .add_artifact(
            &s.ws,
            session.id,
            "Fix double submit",
            "https://git.example.com/web/pull/412",
            Some("pull_request"),
        )
        .await
        .unwrap();
    let entry = s
        .engine
        .feed(&s.ws, Some(idx - 1), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(entry.record.op, Op::SessionArtifact);
    assert_eq!(
        entry.record.session.unwrap().artifact.unwrap().url,
        artifact.url
    );
    let empty = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("t", ActivityKind::Thought, " "),
        )
        .await;
    assert!(matches!(empty, Err(Error::Invalid(_))));
    // Nothing idle yet: the sweep marks nothing.
    assert_eq!(s.engine.mark_stale_sessions().await.unwrap(), 0);
    // An engine that calls a session stale at once (a worker of another deployment on the
    // same store) marks it, once, with a ledger entry by Ordonis itself.
    let eager = ordonis_core::Engine::builder(
        s.store.clone(),
        ordonis_core::Keyring::new(ordonis_core::SecretKey::generate(1)),
    )
    .config(ordonis_core::EngineConfig {
        session_stale_after: std::time::Duration::ZERO,
        ..ordonis_core::EngineConfig::default()
    })
    .build();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(eager.mark_stale_sessions().await.unwrap(), 1);
    assert_eq!(eager.mark_stale_sessions().await.unwrap(), 0);
    let now = s.engine.session(&s.ws, session.id).await.unwrap();
    assert_eq!(now.state, SessionState::Stale);
    let last = s
        .engine
        .feed(&s.ws, None, 1000)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.record.op, Op::SessionState);
    assert_eq!(last.record.actor.kind, ordonis_core::ActorKind::System);
    // Any activity revives it.
    let r = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("t2", ActivityKind::Thought, "back"),
        )
        .await
        .unwrap();
    assert_eq!(r.state, SessionState::Active);
}

/// The session and its artifact show on the Jira issue as remote links: the session's title
/// names the agent, the person and the state and is updated in place on every state change
/// (one link by its `globalId`, even after a lost answer); the artifact links to itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_and_its_artifacts_are_remote_links_on_the_issue() {
    let s = common::site::site_with(|c| {
        c.sessions.url_template = Some("https://collabhub.example.com/sessions/{session}".into());
    })
    .await;
    let task = s.task().await;
    s.jira.lose_next_link_answer(1);
    let session = s
        .engine
        .open_session(&s.ws, task.id, &agent())
        .await
        .unwrap();
    s.settle().await;
    let links = s.jira.remote_links("10001");
    assert_eq!(links.len(), 1, "{links:#?}");
    assert_eq!(
        links[0]["globalId"],
        format!("ordonis:session:{}", session.id).as_str()
    );
    assert_eq!(
        links[0]["object"]["url"],
        format!("https://collabhub.example.com/sessions/{}", session.id).as_str()
    );
    assert_eq!(
        links[0]["object"]["title"],
        "Triage bot (agent) for Alice Smith — working"
    );

    s.engine
        .add_artifact(
            &s.ws,
            session.id,
            "Fix double submit",
            "https://git.example.com/web/pull/412",
            Some("pull_request"),
        )
        .await
        .unwrap();
    s.engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("q", ActivityKind::Elicitation, "Which browser?"),
        )
        .await
        .unwrap();
    s.settle().await;
    let links = s.jira.remote_links("10001");
    assert_eq!(links.len(), 2, "{links:#?}");
    let title_of = |gid: &str| {
        links
            .iter()
            .find(|l| l["globalId"] == gid)
            .map(|l| l["object"]["title"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        title_of(&format!("ordonis:session:{}", session.id)).as_deref(),
        Some("Triage bot (agent) for Alice Smith — awaiting input")
    );
    let artifact = links
        .iter()
        .find(|l| l["object"]["url"] == "https://git.example.com/web/pull/412")
        .unwrap();
    assert_eq!(artifact["object"]["title"], "Fix double submit");
    let now = s.engine.session(&s.ws, session.id).await.unwrap();
    assert!(
        now.links
            .iter()
            .all(|l| !l.pending && l.external_id.is_some()),
        "{now:?}"
    );
}

/// An account without Jira's *Link issues* permission: the session's link is refused with
/// Jira's reason, shown on the session (not retried), and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_link_shows_its_reason_and_is_not_retried() {
    let s = common::site::site_with(|c| {
        c.sessions.url_template = Some("https://collabhub.example.com/sessions/{session}".into());
    })
    .await;
    let task = s.task().await;
    s.jira.fail_next_write(403, &[]);
    let session = s
        .engine
        .open_session(&s.ws, task.id, &agent())
        .await
        .unwrap();
    s.settle().await;
    assert!(s.jira.remote_links("10001").is_empty());
    let now = s.engine.session(&s.ws, session.id).await.unwrap();
    let link = &now.links[0];
    assert!(!link.pending, "{link:?}");
    assert!(
        link.error.as_deref().is_some_and(|e| !e.is_empty()),
        "{link:?}"
    );
    // The session itself is unaffected.
    let r = s
        .engine
        .append_activity(
            &s.ws,
            session.id,
            None,
            activity("t", ActivityKind::Thought, "carrying on"),
        )
        .await
        .unwrap();
    assert_eq!(r.state, SessionState::Active);
}
