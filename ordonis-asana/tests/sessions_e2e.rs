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
