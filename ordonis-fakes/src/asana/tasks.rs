//! The fake Asana's task operations: `GET`/`PUT /tasks/{gid}` (rich text checked and kept as
//! Asana keeps it), `GET /custom_fields/{gid}`, and the permalink page `/0/0/{gid}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::*;

pub(super) async fn get_task(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    // `external:<gid>` names the task carrying that external gid.
    let Some(gid) = s.resolve_task(&gid) else {
        return errors(StatusCode::NOT_FOUND, "Unknown object");
    };
    if lock(&s.hidden).contains(&gid) {
        return errors(
            StatusCode::FORBIDDEN,
            "You do not have access to the requested object.",
        );
    }
    match lock(&s.tasks).get(&gid) {
        Some(t) => data(StatusCode::OK, without_rich_text(t, &q)),
        None => errors(StatusCode::NOT_FOUND, "Unknown object"),
    }
}

/// A task as `GET` answers it: `html_notes` only when `opt_fields` asks for it.
pub(super) fn without_rich_text(task: &Value, q: &HashMap<String, String>) -> Value {
    let mut t = task.clone();
    if !rich::asked_for(q.get("opt_fields").map(String::as_str))
        && let Some(o) = t.as_object_mut()
    {
        o.remove("html_notes");
    }
    t
}

pub(super) async fn put_task(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if lock(&s.hidden).contains(&gid) {
        return errors(
            StatusCode::FORBIDDEN,
            "You do not have access to the requested object.",
        );
    }
    let Some(changes) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_object).cloned())
    else {
        return errors(StatusCode::BAD_REQUEST, "data: Missing input");
    };
    // An agent (AI teammate) is an assignee only under the early-access opt-in.
    if let Some(Value::String(a)) = changes.get("assignee")
        && lock(&s.agents).contains_key(a.trim())
        && !super::create::agents_enabled(&headers)
    {
        return errors(
            StatusCode::BAD_REQUEST,
            &format!("assignee: Not a recognized ID: {a}"),
        );
    }
    // Asana refuses the whole request for one bad field.
    if let Some(html) = changes.get("html_notes") {
        let checked = html
            .as_str()
            .ok_or_else(|| "html_notes: must be a string".to_owned())
            .and_then(rich::check);
        if let Err(message) = checked {
            return errors(StatusCode::BAD_REQUEST, &message);
        }
    }
    if let Some(cf) = changes.get("custom_fields").and_then(Value::as_object)
        && let Some(bad) = cf.keys().find(|k| lock(&s.detached).contains(*k))
    {
        return errors(
            StatusCode::BAD_REQUEST,
            &format!("custom_fields: Custom field with ID {bad} is not on given object"),
        );
    }
    let (task, changed) = {
        let mut tasks = lock(&s.tasks);
        let Some(task) = tasks.get_mut(&gid) else {
            return errors(StatusCode::NOT_FOUND, "Unknown object");
        };
        let clears_due = changes.get("due_on").is_some_and(Value::is_null)
            && changes.get("due_at").is_none_or(Value::is_null);
        let keeps_start = !changes.get("start_on").is_some_and(Value::is_null);
        if clears_due && keeps_start && task["start_on"].is_string() {
            return errors(
                StatusCode::BAD_REQUEST,
                "start_on: You cannot remove the due date of a task that has a start date.",
            );
        }
        let changed = s.apply(task, &changes);
        (task.clone(), changed)
    };
    lock(&s.puts).push((gid.clone(), Value::Object(changes)));
    if !changed.is_empty() {
        // The change is in the event streams at once; the echo delivery follows.
        let events = task_events(&s.stamp(), &gid, API_USER, "changed", &changed);
        let projects = s.projects_of(&gid);
        s.record(&projects, &events);
        if s.echo.load(Ordering::SeqCst) {
            let inner = s.clone();
            s.echoes.spawn(async move {
                inner.deliver_to(Some(&projects), events).await;
            });
        }
    }
    data(StatusCode::OK, without_rich_text(&task, &q))
}

pub(super) async fn get_field(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    match lock(&s.fields).get(&gid) {
        Some(f) => data(StatusCode::OK, f.clone()),
        None => errors(StatusCode::NOT_FOUND, "Unknown object"),
    }
}

/// `GET /0/0/{gid}`: a task's page, for permalinks pointed at the fake
/// ([`FakeAsana::permalink`]). Plain text: the name and whether it is completed.
pub(super) async fn browse(State(s): State<Arc<Inner>>, Path(gid): Path<String>) -> Response {
    match lock(&s.tasks).get(&gid) {
        Some(t) => {
            let text = format!(
                "{}\nCompleted: {}\n\n(The fake Asana of Ordonis's demo and tests: this stands in \
                 for the task's page in Asana.)\n",
                t["name"].as_str().unwrap_or(""),
                if t["completed"] == true { "yes" } else { "no" },
            );
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                text,
            )
                .into_response()
        }
        None => errors(StatusCode::NOT_FOUND, "Unknown object"),
    }
}
