//! `GET /api/pushes?workspace_id=&integration_id=&state=&limit=&cursor=` (a page, see
//! [`super::paging`]) and
//! `POST /api/pushes/{id}/replay`: the outbox, as the inbox is at `/api/events`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::store::{Job, JobFilter, JobId, JobState, OutboxJob, Queue};
use ordonis_core::{Field, IntegrationId, OutboxId, Task, WorkspaceId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json;
use super::paging::{self, Page};
use crate::errors::{ApiError, ApiQuery};
use crate::state::AppState;

/// Filters.
#[derive(Debug, Default, Deserialize)]
pub struct PushesQuery {
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// Only this integration.
    pub integration_id: Option<String>,
    /// Only this state (`pending processing done failed dead`).
    pub state: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The list name in its cursors.
const KIND: &str = "pushes";

/// One outbox row with the task it pushes (when the task still exists).
#[derive(Debug)]
pub struct PushView {
    /// The row.
    pub job: OutboxJob,
    /// Its task.
    pub task: Option<Task>,
}

/// A page of the outbox rows matching the filters, newest first, each with its task.
pub async fn query(s: &AppState, q: &PushesQuery) -> Result<Page<PushView>, ApiError> {
    let state = match q.state.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => Some(JobState::parse(x).ok_or_else(|| {
            ApiError::bad_request("state must be one of pending, processing, done, failed, dead")
        })?),
    };
    let limit = paging::limit(q.limit);
    // One row more than the page: whether a next page exists.
    let mut filter = JobFilter {
        state,
        limit: limit + 1,
        after: paging::parse_job_cursor(KIND, q.cursor.as_deref())?,
        ..JobFilter::new(Queue::Outbox)
    };
    if let Some(i) = q.integration_id.as_deref().filter(|x| !x.is_empty()) {
        let not_found = || ApiError::not_found(format!("integration {i}"));
        let id: IntegrationId = i.parse().map_err(|_| not_found())?;
        s.store.integration(id).await?.ok_or_else(not_found)?;
        filter.integration_id = Some(id);
    }
    if let Some(w) = q.workspace_id.as_deref().filter(|x| !x.is_empty()) {
        filter.workspace_id = Some(WorkspaceId::new(w.to_owned())?);
    }
    let rows = s.store.jobs(&filter).await?;
    let page = Page::of(rows, limit, |j| paging::job_cursor(KIND, j.cursor())).map(Job::into_push);
    // One task read per row of the page: bounded by the page, not the workspace.
    let mut items = Vec::with_capacity(page.items.len());
    for job in page.items {
        let task = s.store.task(job.task_id).await?;
        items.push(PushView { job, task });
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// The fields a push carries: per field, the value waiting to be sent (`queued`), being sent
/// (`sent`) or accepted and awaiting the provider's echo (`acked`).
pub fn fields(task: Option<&Task>) -> Vec<(Field, &'static str, &ordonis_core::FieldValue)> {
    let Some(t) = task else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, st) in &t.sync {
        if let Some(w) = &st.want {
            out.push((*field, "queued", &w.value));
        }
        for i in &st.sent {
            out.push((*field, if i.acked { "acked" } else { "sent" }, &i.value));
        }
    }
    out
}

/// The JSON of one push.
pub fn push_json(p: &PushView) -> Value {
    let j = &p.job;
    json!({
        "id": j.id.to_string(),
        "workspace_id": j.workspace_id.as_str(),
        "integration_id": j.integration_id.to_string(),
        "task_id": j.task_id.to_string(),
        "state": j.state.as_str(),
        "attempts": j.attempts,
        "last_error": j.last_error,
        "next_attempt_at": json::ts(j.next_attempt_at),
        "fields": fields(p.task.as_ref()).iter().map(|(f, stage, v)| json!({
            "field": f.as_str(),
            "stage": stage,
            "value": json::value(v),
        })).collect::<Vec<_>>(),
        "task": p.task.as_ref().map(json::task),
    })
}

/// `GET /api/pushes`.
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<PushesQuery>,
) -> Result<Json<Value>, ApiError> {
    let pushes = query(&s, &q).await?;
    Ok(Json(json!({
        "pushes": pushes.items.iter().map(push_json).collect::<Vec<_>>(),
        "next_cursor": pushes.next_cursor,
    })))
}

/// Puts a failed or dead push back to pending.
pub async fn replay_push(s: &AppState, id: &str) -> Result<OutboxId, ApiError> {
    let not_found = || ApiError::not_found(format!("push {id}"));
    let pid: OutboxId = id.parse().map_err(|_| not_found())?;
    let job = s
        .store
        .job(JobId::Push(pid))
        .await?
        .and_then(Job::into_push)
        .ok_or_else(not_found)?;
    if !matches!(job.state, JobState::Failed | JobState::Dead) {
        return Err(ApiError::conflict(format!(
            "only failed or dead pushes can be replayed (this one is {})",
            job.state.as_str()
        )));
    }
    s.store.replay(&job.workspace_id, JobId::Push(pid)).await?;
    s.wake.notify_waiters();
    Ok(pid)
}

/// `POST /api/pushes/{id}/replay` → 202.
pub async fn replay(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let pid = replay_push(&s, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": pid.to_string(), "state": "pending"})),
    )
        .into_response())
}
