//! Agent sessions: `POST`/`GET /api/tasks/{id}/sessions`, `GET`/`PATCH /api/sessions/{id}`,
//! `POST /api/sessions/{id}/activities`, `POST /api/sessions/{id}/artifacts`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::{
    ActivityContent, ActivityKind, AgentSession, NewActivity, SessionActivity, SessionId,
    SessionState, WorkspaceId,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json::{self, ts};
use super::tasks::{ActorIn, find};
use crate::errors::{ApiError, ApiJson};
use crate::state::AppState;

/// `POST /api/tasks/{id}/sessions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIn {
    actor: ActorIn,
}

/// `POST /api/sessions/{id}/activities`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityIn {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    parameter: Option<String>,
    #[serde(default)]
    result: Option<String>,
    /// For a `prompt`: the person replying (default: the person the session works for).
    #[serde(default)]
    actor: Option<ActorIn>,
}

/// `POST /api/sessions/{id}/artifacts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactIn {
    title: String,
    url: String,
    #[serde(default)]
    kind: Option<String>,
}

/// `PATCH /api/sessions/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateIn {
    state: String,
}

/// Opens a session for an agent acting for a person: `201 {session_id, state}`.
pub async fn open(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OpenIn>,
) -> Result<Response, ApiError> {
    let task = find(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let session = s
        .engine
        .open_session(&task.workspace_id, task.id, &actor)
        .await?;
    if session.has_pending_links() {
        s.wake.notify_waiters();
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({"session_id": session.id.to_string(), "state": session.state.as_str()})),
    )
        .into_response())
}

/// A task's sessions, oldest first (without their activities).
pub async fn list(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&s, &id).await?;
    let sessions = s.engine.sessions(&task.workspace_id, task.id).await?;
    Ok(Json(json!({
        "sessions": sessions.iter().map(summary).collect::<Vec<_>>(),
    })))
}

/// One session with its activities, artifacts and where it shows in the provider.
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = locate(&s, &id).await?;
    let ws = session.workspace_id.clone();
    let activities = s.engine.session_activities(&ws, session.id).await?;
    Ok(Json(full(&s, &ws, &session, &activities).await?))
}

/// Appends an activity: `202 {activity_id, ledger_index}`, or `200` with the first answer
/// when the id was appended before with the same content.
pub async fn activity(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ActivityIn>,
) -> Result<Response, ApiError> {
    let session = locate(&s, &id).await?;
    let kind = ActivityKind::parse(&body.kind).ok_or_else(|| {
        ApiError::bad_request(
            "type must be one of thought, action, elicitation, response, error, prompt",
        )
    })?;
    let actor = body.actor.map(ActorIn::into_actor).transpose()?;
    if actor.is_some() && kind != ActivityKind::Prompt {
        return Err(ApiError::bad_request(
            "actor is given for a prompt only (the session's agent makes the rest)",
        ));
    }
    let r = s
        .engine
        .append_activity(
            &session.workspace_id,
            session.id,
            actor.as_ref(),
            NewActivity {
                id: body.id,
                content: ActivityContent {
                    kind,
                    body: body.body,
                    action: body.action,
                    parameter: body.parameter,
                    result: body.result,
                },
            },
        )
        .await?;
    if !r.repeated {
        s.wake.notify_waiters();
    }
    let status = if r.repeated {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({
            "activity_id": r.activity_id,
            "ledger_index": r.ledger_index,
            "state": r.state.as_str(),
            "comment_id": r.comment_id.map(|c| c.to_string()),
        })),
    )
        .into_response())
}

/// Adds an artifact: `202 {artifact_id, ledger_index}`; `400` for a URL that is not https.
pub async fn artifact(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ArtifactIn>,
) -> Result<Response, ApiError> {
    let session = locate(&s, &id).await?;
    let (a, idx) = s
        .engine
        .add_artifact(
            &session.workspace_id,
            session.id,
            &body.title,
            &body.url,
            body.kind.as_deref(),
        )
        .await?;
    s.wake.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"artifact_id": a.id.to_string(), "ledger_index": idx})),
    )
        .into_response())
}

/// Sets a session's state (`complete` when the agent is done): `200` with the session.
pub async fn set_state(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StateIn>,
) -> Result<Json<Value>, ApiError> {
    let session = locate(&s, &id).await?;
    let state = SessionState::parse(&body.state).ok_or_else(|| {
        ApiError::bad_request("state must be one of active, awaiting_input, complete, error, stale")
    })?;
    let session = s
        .engine
        .set_session_state(&session.workspace_id, session.id, state)
        .await?;
    s.wake.notify_waiters();
    Ok(Json(summary(&session)))
}

/// The session `id` names (404 when unknown or not a UUID).
async fn locate(s: &AppState, id: &str) -> Result<AgentSession, ApiError> {
    let not_found = || ApiError::not_found(format!("session {id}"));
    let sid: SessionId = id.parse().map_err(|_| not_found())?;
    s.store.session(sid).await?.ok_or_else(not_found)
}

/// A session without its activities.
pub fn summary(session: &AgentSession) -> Value {
    let a = &session.agent;
    json!({
        "id": session.id.to_string(),
        "task_id": session.task_id.to_string(),
        "agent": {"kind": "agent", "id": a.id, "display_name": a.display_name},
        "on_behalf_of": serde_json::to_value(&a.on_behalf_of).unwrap_or(Value::Null),
        "state": session.state.as_str(),
        "created_at": ts(session.created_at),
        "updated_at": ts(session.updated_at),
        "last_activity_at": ts(session.last_activity_at),
    })
}

/// A session with its activities, artifacts and where it shows in the provider.
async fn full(
    s: &AppState,
    ws: &WorkspaceId,
    session: &AgentSession,
    activities: &[SessionActivity],
) -> Result<Value, ApiError> {
    let mut v = summary(session);
    v["activities"] = activities
        .iter()
        .map(|a| {
            let posted = session
                .activities
                .iter()
                .find(|r| r.id == a.id)
                .and_then(|r| r.comment_id);
            json!({
                "id": a.id,
                "type": a.content.kind.as_str(),
                "body": a.content.body,
                "action": a.content.action,
                "parameter": a.content.parameter,
                "result": a.content.result,
                "actor": {"kind": serde_json::to_value(a.actor.kind).unwrap_or(Value::Null),
                          "id": a.actor.id, "display_name": a.actor.display_name},
                "ledger_index": a.ledger_index,
                "at": ts(a.at),
                "comment_id": posted.map(|c| c.to_string()),
            })
        })
        .collect();
    v["artifacts"] = session
        .artifacts
        .iter()
        .map(|a| json!({"id": a.id.to_string(), "title": a.title, "url": a.url, "kind": a.kind}))
        .collect();
    // Where it shows: its links, and the comments its activities were posted as.
    let provider = match session.integration_id {
        Some(i) => s
            .store
            .integration(i)
            .await?
            .map(|r| r.provider.to_string()),
        None => None,
    };
    let link_kind = match provider.as_deref() {
        Some("asana") => "attachment",
        _ => "remote_link",
    };
    let mut external: Vec<Value> = session
        .links
        .iter()
        .map(|l| {
            json!({
                "provider": provider,
                "kind": link_kind,
                "global_id": l.global_id,
                "external_id": l.external_id,
                "title": l.title,
                "url": l.url,
                "sync": {
                    "state": if l.error.is_some() { "refused" } else if l.pending { "pending" } else { "sent" },
                    "error": l.error,
                },
            })
        })
        .collect();
    let comments = s.engine.comments(ws, session.task_id).await?;
    for r in &session.activities {
        if let Some(c) = r
            .comment_id
            .and_then(|id| comments.iter().find(|c| c.id == id))
        {
            let mut cv = json::comment(c);
            external.push(json!({
                "provider": provider,
                "kind": "comment",
                "activity_id": r.id,
                "comment_id": c.id.to_string(),
                "external_id": c.external_id,
                "sync": cv["sync"].take(),
            }));
        }
    }
    v["external"] = Value::Array(external);
    Ok(v)
}
