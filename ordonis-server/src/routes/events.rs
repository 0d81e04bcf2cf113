//! `GET /api/events?integration_id=&status=&workspace_id=&limit=&cursor=` (a page, see
//! [`super::paging`]) and
//! `POST /api/events/{id}/replay`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::StoreExt;
use ordonis_core::store::{InboxEvent, Job, JobFilter, JobId, JobState, Queue};
use ordonis_core::{EventId, IntegrationId, WorkspaceId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::json;
use super::paging::{self, Page};
use crate::errors::{ApiError, ApiQuery};
use crate::state::AppState;

/// Filters.
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    /// Only this integration.
    pub integration_id: Option<String>,
    /// Only this state (`pending processing done failed dead`).
    pub status: Option<String>,
    /// Only this workspace.
    pub workspace_id: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The list name in its cursors.
const KIND: &str = "events";

/// A page of the inbox rows matching the filters, newest first.
pub async fn query(s: &AppState, q: &EventsQuery) -> Result<Page<InboxEvent>, ApiError> {
    let state = match q.status.as_deref().filter(|x| !x.is_empty()) {
        None => None,
        Some(x) => Some(JobState::parse(x).ok_or_else(|| {
            ApiError::bad_request("status must be one of pending, processing, done, failed, dead")
        })?),
    };
    let limit = paging::limit(q.limit);
    // One row more than the page: whether a next page exists.
    let mut filter = JobFilter {
        state,
        limit: limit + 1,
        after: paging::parse_job_cursor(KIND, q.cursor.as_deref())?,
        ..JobFilter::new(Queue::Inbox)
    };
    if let Some(i) = q.integration_id.as_deref().filter(|x| !x.is_empty()) {
        let not_found = || ApiError::not_found(format!("integration {i}"));
        let id: IntegrationId = i.parse().map_err(|_| not_found())?;
        s.store.integration(id).await?.ok_or_else(not_found)?;
        filter.integration_id = Some(id);
    }
    // Both filters apply together: a workspace and another workspace's integration match
    // nothing (never the integration's rows).
    if let Some(w) = q.workspace_id.as_deref().filter(|x| !x.is_empty()) {
        filter.workspace_id = Some(WorkspaceId::new(w.to_owned())?);
    }
    // One query, across every workspace when none is named (an operator's view).
    let rows = s.store.jobs(&filter).await?;
    Ok(Page::of(rows, limit, |j| paging::job_cursor(KIND, j.cursor())).map(Job::into_event))
}

/// Lists inbox rows.
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let events = query(&s, &q).await?;
    Ok(Json(json!({
        "events": events.items.iter().map(json::event).collect::<Vec<_>>(),
        "next_cursor": events.next_cursor,
    })))
}

/// Puts a failed or dead event back to pending.
pub async fn replay_event(s: &AppState, id: &str) -> Result<EventId, ApiError> {
    let not_found = || ApiError::not_found(format!("event {id}"));
    let eid: EventId = id.parse().map_err(|_| not_found())?;
    let ev = s
        .store
        .job(JobId::Event(eid))
        .await?
        .and_then(Job::into_event)
        .ok_or_else(not_found)?;
    let ws = ev.workspace_id.clone();
    if !matches!(ev.state, JobState::Failed | JobState::Dead) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "only failed or dead events can be replayed (this one is {})",
                ev.state.as_str()
            ),
        ));
    }
    s.store.replay_event(&ws, eid).await?;
    s.wake.notify_waiters();
    Ok(eid)
}

/// `POST /api/events/{id}/replay` → 202.
pub async fn replay(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let eid = replay_event(&s, &id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": eid.to_string(), "state": "pending"})),
    )
        .into_response())
}
