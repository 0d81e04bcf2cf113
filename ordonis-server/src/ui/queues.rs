//! The inbox and outbox views: rows filterable by workspace, integration and state, with
//! replay for failed and dead ones, and the next attempt time of each.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use ordonis_core::store::JobState;
use ordonis_core::{IntegrationRecord, WorkspaceId};

use super::layout::{page, when};
use super::{ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::events::{EventsQuery, query as events_query, replay_event};
use crate::routes::json::value_text;
use crate::routes::pushes::{PushesQuery, fields, query as pushes_query, replay_push};
use crate::state::AppState;

/// The states a queue row can be in, for the filter.
const STATES: [&str; 5] = ["pending", "processing", "done", "failed", "dead"];

/// How long the engine's schedule retries a row ("24 h").
fn retry_window(s: &AppState) -> String {
    let c = s.engine.config();
    let secs = c.backoff.span(c.max_attempts).as_secs();
    if secs >= 3600 {
        format!("{} h ({} attempts)", secs / 3600, c.max_attempts)
    } else {
        format!("{} min ({} attempts)", secs.div_ceil(60), c.max_attempts)
    }
}

fn replayable(s: JobState) -> bool {
    matches!(s, JobState::Failed | JobState::Dead)
}

/// The integrations the filters offer: the workspace's, or every workspace's.
async fn integrations(s: &AppState, ws: Option<&str>) -> Result<Vec<IntegrationRecord>, ApiError> {
    let wss = match ws {
        Some(w) => vec![WorkspaceId::new(w.to_owned())?],
        None => s.store.workspaces().await?,
    };
    let mut out = Vec::new();
    for w in &wss {
        out.extend(s.store.integrations(w).await?);
    }
    Ok(out)
}

fn filters(
    action: &str,
    ws: Option<&str>,
    integration: Option<&str>,
    state: Option<&str>,
    list: &[IntegrationRecord],
) -> Markup {
    html! {
        form.filters #filters method="get" action=(action) {
            @if let Some(w) = ws { input type="hidden" name="workspace_id" value=(w); }
            label { "Integration "
                select name="integration_id" id="filter-integration" {
                    option value="" { "any" }
                    @for r in list {
                        @let id = r.id.to_string();
                        option value=(id) selected[integration == Some(id.as_str())] {
                            (r.workspace_id.as_str()) " · " (r.provider.as_str()) " · " (r.config["base_url"].as_str().unwrap_or(""))
                        }
                    }
                }
            }
            label { (if action.ends_with("events") { "Status " } else { "State " })
                select name=(if action.ends_with("events") { "status" } else { "state" }) id="filter-state" {
                    option value="" { "any" }
                    @for st in STATES { option value=(st) selected[state == Some(st)] { (st) } }
                }
            }
            button.primary type="submit" { "Apply" }
        }
    }
}

/// The link to the next (older) page: the same filters and the page's cursor.
fn older(path: &str, filters: &[(&str, &Option<String>)], cursor: &str) -> String {
    let mut q: Vec<String> = filters
        .iter()
        .filter_map(|(k, v)| nonempty(v).map(|v| format!("{k}={}", url_seg(v))))
        .collect();
    q.push(format!("cursor={}", url_seg(cursor)));
    format!("{path}?{}", q.join("&"))
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|x| !x.is_empty())
}

fn state_badge(s: JobState) -> Markup {
    let class = match s {
        JobState::Done => "ok",
        JobState::Failed | JobState::Dead => "bad",
        JobState::Pending | JobState::Processing => "warn",
    };
    html! { span class=(format!("badge {class}")) { (s.as_str()) } }
}

/// `GET /ui/events`: the inbox.
pub(crate) async fn events_page(
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let ws = nonempty(&q.workspace_id);
    let (events, list) = match (events_query(&s, &q).await, integrations(&s, ws).await) {
        (Ok(e), Ok(l)) => (e, l),
        (Err(e), _) | (_, Err(e)) => return ui_error(e),
    };
    let body = html! {
        p.muted { "Webhook deliveries as received. A failed event is retried with backoff for "
            (retry_window(&s)) "; then it is dead until replayed." }
        (filters("/ui/events", ws, nonempty(&q.integration_id), nonempty(&q.status), &list))
        div.scroll {
            table #events {
                thead { tr { th { "Received" } th { "Workspace" } th { "Object" } th { "State" } th { "Attempts" } th { "Next attempt" } th { "Error / note" } th {} } }
                tbody {
                    @for e in &events.items {
                        tr id=(format!("event-{}", e.id)) {
                            td { (when(e.received_at)) }
                            td { (e.workspace_id.as_str()) }
                            td { (e.object_key.as_deref().unwrap_or("")) }
                            td { (state_badge(e.state)) }
                            td { (e.attempts) " of " (s.engine.config().max_attempts) }
                            td { @if matches!(e.state, JobState::Pending | JobState::Failed) { (when(e.next_attempt_at)) } }
                            td { (e.last_error.as_deref().unwrap_or("")) }
                            td {
                                @if replayable(e.state) {
                                    form.inline method="post" action=(format!("/ui/events/{}/replay", e.id)) {
                                        button type="submit" { "Replay" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if events.items.is_empty() { p.muted { "No inbox events match." } }
        @if let Some(c) = &events.next_cursor {
            p { a #older href=(older("/ui/events", &[("workspace_id", &q.workspace_id), ("integration_id", &q.integration_id), ("status", &q.status)], c)) { "Older →" } }
        }
    };
    page("Inbox", ws, body).into_response()
}

/// `POST /ui/events/{id}/replay`.
pub(crate) async fn events_replay(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match replay_event(&s, &id).await {
        Ok(_) => Redirect::to("/ui/events").into_response(),
        Err(e) => ui_error(e),
    }
}

/// `GET /ui/pushes`: the outbox.
pub(crate) async fn pushes_page(
    State(s): State<AppState>,
    Query(q): Query<PushesQuery>,
) -> Response {
    let ws = nonempty(&q.workspace_id);
    let (pushes, list) = match (pushes_query(&s, &q).await, integrations(&s, ws).await) {
        (Ok(p), Ok(l)) => (p, l),
        (Err(e), _) | (_, Err(e)) => return ui_error(e),
    };
    let body = html! {
        p.muted { "Pushes of CollabHub changes to the providers. A failed push is retried with backoff for "
            (retry_window(&s)) "; then it is dead until replayed." }
        (filters("/ui/pushes", ws, nonempty(&q.integration_id), nonempty(&q.state), &list))
        div.scroll {
            table #pushes {
                thead { tr { th { "Task" } th { "Fields" } th { "State" } th { "Attempts" } th { "Next attempt" } th { "Last error" } th {} } }
                tbody {
                    @for p in &pushes.items {
                        @let j = &p.job;
                        tr.push id=(format!("push-{}", j.id)) data-state=(j.state.as_str()) {
                            td {
                                a href=(format!("/ui/tasks/{}", j.task_id)) {
                                    (p.task.as_ref().map_or("(task gone)", |t| t.fields.title.as_str()))
                                }
                            }
                            td {
                                @for (f, stage, v) in fields(p.task.as_ref()) {
                                    span { (f.as_str()) " = " (value_text(v)) " " span.muted { "(" (stage) ")" } } br;
                                }
                            }
                            td { (state_badge(j.state)) }
                            td { (j.attempts) " of " (s.engine.config().max_attempts) }
                            td.next-attempt { @if matches!(j.state, JobState::Pending | JobState::Failed) { (when(j.next_attempt_at)) } }
                            td { (j.last_error.as_deref().unwrap_or("")) }
                            td {
                                @if replayable(j.state) {
                                    form.inline method="post" action=(format!("/ui/pushes/{}/replay", j.id)) {
                                        button.replay type="submit" { "Replay" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if pushes.items.is_empty() { p.muted #no-pushes { "No pushes match." } }
        @if let Some(c) = &pushes.next_cursor {
            p { a #older href=(older("/ui/pushes", &[("workspace_id", &q.workspace_id), ("integration_id", &q.integration_id), ("state", &q.state)], c)) { "Older →" } }
        }
    };
    page("Outbox", ws, body).into_response()
}

/// `POST /ui/pushes/{id}/replay`.
pub(crate) async fn pushes_replay(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match replay_push(&s, &id).await {
        Ok(_) => Redirect::to(&format!("/ui/pushes#push-{}", url_seg(&id))).into_response(),
        Err(e) => ui_error(e),
    }
}
