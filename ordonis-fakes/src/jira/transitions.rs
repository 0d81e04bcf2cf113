//! The fake Jira's workflow over HTTP: `GET`/`POST /rest/api/3/issue/{id}/transitions`,
//! `POST /rest/api/3/workflows/preview` and `GET /rest/api/3/project/{key}/statuses` (the
//! workflow itself is [`FakeWorkflow`](super::FakeWorkflow)).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::site::{Site, authorized, error, lock, write_fault};
use super::workflow::status_value;

pub(super) async fn project_statuses(
    State(s): State<Arc<Site>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/project/{key}/statuses"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let statuses: Vec<Value> = s
        .workflow()
        .statuses
        .iter()
        .map(|(id, name, cat)| status_value(id, name, cat))
        .collect();
    // One workflow for every issue type the site's issues use.
    let mut types: Vec<String> = lock(&s.issues)
        .values()
        .filter_map(|i| i["fields"]["issuetype"]["id"].as_str().map(str::to_owned))
        .collect();
    types.sort();
    types.dedup();
    let list: Vec<Value> = types
        .into_iter()
        .map(|t| json!({"id": t, "name": "Task", "subtask": false, "statuses": statuses}))
        .collect();
    Json(Value::Array(list)).into_response()
}

pub(super) async fn transitions(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/transitions"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((_, issue)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let current = issue
        .get("fields")
        .and_then(|f| f.get("status"))
        .and_then(|st| st.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Json(s.workflow().transitions_json(&current)).into_response()
}

pub(super) async fn do_transition(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("POST /rest/api/3/issue/{id}/transitions"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some((_, issue)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let current = issue["fields"]["status"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let change = match s.workflow().perform(&current, &body) {
        Ok(c) => c,
        Err((code, body)) => return (code, Json(body)).into_response(),
    };
    let gate = lock(&s.transition_gate).clone();
    if let Some((after, mut open)) = gate
        && lock(&s.transitions_done).len() >= after
    {
        // Only a dropped sender ends the wait early; the fake owns it.
        let _ = open.wait_for(|o| *o).await;
    }
    if let Some(t) = body["transition"]["id"].as_str() {
        lock(&s.transitions_done).push(t.to_owned());
    }
    match s.apply(&id, &change) {
        Some(items) => {
            s.echo(&id, items);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

/// `POST /rest/api/3/workflows/preview`: `projectId` is required, with at least one lookup
/// term (issue type ids here); without the permission
/// ([`crate::jira::FakeJira::deny_workflow_read`]) a 403, as Jira answers a user who
/// has neither *View (read-only) workflow* nor *Administer projects*.
pub(super) async fn preview(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("POST /rest/api/3/workflows/preview".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if s.workflow_read_denied.load(Ordering::SeqCst) {
        return error(
            StatusCode::FORBIDDEN,
            "You don't have permission to view this workflow.",
        );
    }
    let Some(project) = body.get("projectId").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "projectId is required.");
    };
    let types: Vec<String> = body
        .get("issueTypeIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let by_name = body
        .get("workflowNames")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let by_id = body
        .get("workflowIds")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if types.is_empty() && !by_name && !by_id {
        return error(
            StatusCode::BAD_REQUEST,
            "At least one of workflowNames, workflowIds or issueTypeIds is required.",
        );
    }
    let known = lock(&s.issues).values().any(|i| {
        i["fields"]["project"]["id"].as_str() == Some(project)
            || i["fields"]["project"]["key"].as_str() == Some(project)
    });
    if !known {
        return error(StatusCode::NOT_FOUND, "The project was not found.");
    }
    Json(s.workflow().preview_json(project, &types)).into_response()
}
