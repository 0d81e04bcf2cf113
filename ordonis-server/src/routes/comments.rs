//! `GET`/`POST /api/tasks/{id}/comments`, `PATCH`/`DELETE /api/comments/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::{CommentId, CommentReceipt, JobFilter, JobState, Queue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json;
use super::tasks::{ActorIn, find};
use crate::errors::{ApiError, ApiJson};
use crate::state::AppState;

/// The body of a comment write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentIn {
    actor: ActorIn,
    body: String,
}

/// The body of a deletion.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteIn {
    actor: ActorIn,
}

/// A task's comments, oldest first (tombstones included, `deleted: true`).
pub async fn list(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&s, &id).await?;
    let comments = s.engine.comments(&task.workspace_id, task.id).await?;
    // A comment waiting on a push that gave up (dead or failed, replayable from the outbox)
    // is shown `failed`, with the push's error.
    let mut stuck: Option<String> = None;
    if comments
        .iter()
        .any(|c| c.sync.as_ref().is_some_and(|x| x.pending.is_some()))
    {
        for state in [JobState::Dead, JobState::Failed] {
            let jobs = s
                .store
                .jobs(&JobFilter {
                    workspace_id: Some(task.workspace_id.clone()),
                    state: Some(state),
                    limit: 1000,
                    ..JobFilter::new(Queue::Outbox)
                })
                .await?;
            if let Some(p) = jobs
                .into_iter()
                .filter_map(ordonis_core::Job::into_push)
                .find(|p| p.task_id == task.id)
            {
                stuck = Some(
                    p.last_error
                        .unwrap_or_else(|| "the push gave up".to_owned()),
                );
                break;
            }
        }
    }
    let shown: Vec<Value> = comments
        .iter()
        .map(|c| {
            let mut v = json::comment(c);
            if let (Some(why), true) =
                (&stuck, c.sync.as_ref().is_some_and(|x| x.pending.is_some()))
            {
                v["sync"] = json!({"state": "failed", "error": why});
            }
            v
        })
        .collect();
    Ok(Json(json!({ "comments": shown })))
}

fn accepted(s: &AppState, r: &CommentReceipt) -> Response {
    if r.push_queued {
        s.wake.notify_waiters();
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "comment_id": r.comment_id.to_string(),
            "ledger_entries": r.entries.iter().map(|e| e.idx).collect::<Vec<_>>(),
            "push_queued": r.push_queued,
        })),
    )
        .into_response()
}

/// Comments on a task as an actor: 202 with the comment's id, its ledger entries' indexes and
/// whether a push was queued; 400 for an empty body or control characters, 409 for a task
/// deleted in the provider or out of scope.
pub async fn add(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentIn>,
) -> Result<Response, ApiError> {
    let task = find(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let r = s
        .engine
        .add_comment(&task.workspace_id, task.id, &actor, &body.body)
        .await?;
    Ok(accepted(&s, &r))
}

/// The comment `id` names, with its workspace (404 when unknown or not a UUID).
async fn locate(s: &AppState, id: &str) -> Result<ordonis_core::TaskComment, ApiError> {
    let not_found = || ApiError::not_found(format!("comment {id}"));
    let cid: CommentId = id.parse().map_err(|_| not_found())?;
    s.store.comment(cid).await?.ok_or_else(not_found)
}

/// Edits one of CollabHub's comments (409 for a comment written in the provider).
pub async fn edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CommentIn>,
) -> Result<Response, ApiError> {
    let c = locate(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let r = s
        .engine
        .edit_comment(&c.workspace_id, c.id, &actor, &body.body)
        .await?;
    Ok(accepted(&s, &r))
}

/// Deletes one of CollabHub's comments (409 for a comment written in the provider).
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DeleteIn>,
) -> Result<Response, ApiError> {
    let c = locate(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let r = s
        .engine
        .delete_comment(&c.workspace_id, c.id, &actor)
        .await?;
    Ok(accepted(&s, &r))
}
