//! An agent session on an Asana task end to end: the agent's question is one story with its
//! attribution line, a person's reply story becomes the session's prompt (the same path a
//! reconcile's read of the conversation takes when the reply's webhook was dropped), and the
//! answer and completion follow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Site;
use ordonis_core::{
    ActivityContent, ActivityKind, Actor, ActorKind, NewActivity, Principal, SessionState,
};
use ordonis_fakes::asana::FakeAsana;
use serde_json::json;

fn agent() -> Actor {
    Actor::agent(
        "agt_planner",
        vec![Principal {
            kind: ActorKind::Human,
            id: "usr_bo".into(),
            grant: None,
            display_name: Some("Bo Lee".into()),
        }],
    )
    .named("Planner")
}

fn said(kind: ActivityKind, body: &str) -> NewActivity {
    NewActivity {
        id: None,
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
async fn an_agent_asks_on_asana_and_the_reply_is_its_prompt() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    let site = Site::start(&fake, &p, json!({"projects": [p]}), "ws-asana-sessions").await;
    let gid = fake.create_task_in(&p, "Plan the launch").await;
    site.settle(&fake).await;
    let task = site.task(&gid).await.unwrap();
    let session = site
        .engine
        .open_session(&site.ws, task.id, &agent())
        .await
        .unwrap();
    site.engine
        .append_activity(
            &site.ws,
            session.id,
            None,
            said(ActivityKind::Thought, "Drafting"),
        )
        .await
        .unwrap();
    let asked = site
        .engine
        .append_activity(
            &site.ws,
            session.id,
            None,
            said(ActivityKind::Elicitation, "Is Friday the launch day?"),
        )
        .await
        .unwrap();
    assert_eq!(asked.state, SessionState::AwaitingInput);
    site.settle(&fake).await;
    let comments: Vec<String> = fake
        .stories(&gid)
        .into_iter()
        .filter(|s| s["resource_subtype"] == "comment_added")
        .map(|s| s["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].contains("Question: Is Friday the launch day?"),
        "{comments:?}"
    );
    assert!(
        comments[0].contains("Planner (agent) for Bo Lee"),
        "{comments:?}"
    );

    // Bo replies in Asana.
    fake.comment_as(&gid, "u-bo", "Bo Lee", "Yes, Friday 10:00")
        .await;
    site.settle(&fake).await;
    let now = site.engine.session(&site.ws, session.id).await.unwrap();
    assert_eq!(now.state, SessionState::Active);
    let activities = site
        .engine
        .session_activities(&site.ws, session.id)
        .await
        .unwrap();
    let prompt = activities.last().unwrap();
    assert_eq!(prompt.content.kind, ActivityKind::Prompt);
    assert_eq!(prompt.actor.id, "u-bo");
    assert_eq!(prompt.content.body.as_deref(), Some("Yes, Friday 10:00"));

    site.engine
        .append_activity(
            &site.ws,
            session.id,
            None,
            said(ActivityKind::Response, "Launch plan set for Friday 10:00."),
        )
        .await
        .unwrap();
    site.engine
        .set_session_state(&site.ws, session.id, SessionState::Complete)
        .await
        .unwrap();
    site.settle(&fake).await;
    let ours = fake
        .stories(&gid)
        .into_iter()
        .filter(|s| s["resource_subtype"] == "comment_added")
        .count();
    assert_eq!(ours, 3); // the question, Bo's reply, the answer
}

/// On Asana the session and its artifact are external attachments of the task; a state
/// change replaces the session's (Asana cannot edit one), leaving exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_and_its_artifacts_are_attachments_on_the_task() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let p = fake.add_project("Launch");
    // Retries within milliseconds: a lost answer's push is retried at once.
    let fast = ordonis_core::EngineConfig {
        backoff: ordonis_core::Backoff {
            min: std::time::Duration::from_millis(5),
            max: std::time::Duration::from_millis(20),
        },
        ..ordonis_core::EngineConfig::default()
    };
    let site = Site::start_with(&fake, &p, json!({"projects": [p]}), "ws-asana-links", fast).await;
    let id = site.integration;
    let mut config = site
        .engine
        .store()
        .integration(id)
        .await
        .unwrap()
        .unwrap()
        .config;
    config["sessions"] =
        json!({"url_template": "https://collabhub.example.com/sessions/{session}"});
    site.engine
        .store()
        .update_integration(
            id,
            &ordonis_core::IntegrationUpdate {
                config: Some(config),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let gid = fake.create_task_in(&p, "Plan the launch").await;
    site.settle(&fake).await;
    let task = site.task(&gid).await.unwrap();
    fake.lose_next_attachment_answer(1);
    let session = site
        .engine
        .open_session(&site.ws, task.id, &agent())
        .await
        .unwrap();
    site.engine
        .add_artifact(
            &site.ws,
            session.id,
            "Launch plan",
            "https://docs.example.com/launch",
            Some("document"),
        )
        .await
        .unwrap();
    site.settle(&fake).await;
    site.engine
        .set_session_state(&site.ws, session.id, SessionState::Complete)
        .await
        .unwrap();
    // The first post lost its answer: its push is retried after the engine's backoff.
    let mut names: Vec<String> = Vec::new();
    for _ in 0..100 {
        site.settle(&fake).await;
        names = fake
            .attachments(&gid)
            .iter()
            .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        let done = site
            .engine
            .session(&site.ws, session.id)
            .await
            .unwrap()
            .links
            .iter()
            .all(|l| !l.pending);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(
        names.contains(&"Planner (agent) for Bo Lee — complete".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"Launch plan".to_owned()), "{names:?}");
}
