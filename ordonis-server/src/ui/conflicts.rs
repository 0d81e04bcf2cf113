//! The conflicts view: every field whose last decision was a conflict (both sides changed),
//! the policy's verdict, and the two ways to settle it (accept theirs, push ours), each
//! recorded in the ledger as the UI admin's.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use ordonis_core::{Actor, Field, FieldValue, Owner, Resolution, Task, WorkspaceId};

use super::layout::{page as layout_page, when};
use super::sync_view::open_conflicts;
use super::{ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::value_text;
use crate::routes::tasks::find;
use crate::state::AppState;

/// One open conflict, with the two values at stake.
struct Open {
    task: Task,
    field: Field,
    verdict: String,
    at: time::OffsetDateTime,
    ours: FieldValue,
    theirs: FieldValue,
}

/// The two sides of a conflict: CollabHub's value and the provider's.
fn sides(
    t: &Task,
    field: Field,
    e: &ordonis_core::LedgerEntry,
    owner: Owner,
) -> (FieldValue, FieldValue) {
    let current = t.fields.get(field);
    let theirs = t.sync_state(field).base.unwrap_or_else(|| current.clone());
    let ours = match owner {
        // The provider's value won: ours is the one the conflict replaced.
        Owner::Provider => e.record.before.clone().unwrap_or(current),
        Owner::Host => current,
    };
    (ours, theirs)
}

/// Tasks scanned per page of the view.
const SCAN: usize = 200;

/// The open conflicts among one page of the workspace's tasks (in id order, after `after`),
/// and the last task id of the page when more tasks follow: each request reads a bounded
/// number of tasks and their ledgers, never the whole workspace.
async fn open_in(
    s: &AppState,
    ws: &WorkspaceId,
    after: Option<ordonis_core::TaskId>,
) -> Result<(Vec<Open>, Option<ordonis_core::TaskId>), ApiError> {
    let mut out = Vec::new();
    let tasks = s
        .store
        .tasks(ws, &ordonis_core::TaskPage { after, limit: SCAN })
        .await?;
    let next = if tasks.len() == SCAN {
        tasks.last().map(|t| t.id)
    } else {
        None
    };
    for t in tasks {
        let entries = s.store.task_ledger(ws, t.id).await?;
        let policy = super::sync_view::task_policy(s, &t).await?;
        let found: Vec<(Field, String, time::OffsetDateTime, FieldValue, FieldValue)> =
            open_conflicts(&entries)
                .into_iter()
                .map(|(field, e)| {
                    let (ours, theirs) = sides(&t, field, e, policy.rule(field).owner);
                    (
                        field,
                        e.record.rule.clone(),
                        e.record.observed_at,
                        ours,
                        theirs,
                    )
                })
                .collect();
        for (field, verdict, at, ours, theirs) in found {
            out.push(Open {
                task: t.clone(),
                field,
                verdict,
                at,
                ours,
                theirs,
            });
        }
    }
    Ok((out, next))
}

/// `?after=`: the last task id of the previous page of the view.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ConflictsQuery {
    after: Option<String>,
}

/// `GET /ui/workspaces/{ws}/conflicts[?after=]`: the conflicts among a page of tasks.
pub(crate) async fn page(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    Query(q): Query<ConflictsQuery>,
) -> Response {
    let ws = match WorkspaceId::new(ws) {
        Ok(w) => w,
        Err(e) => return ui_error(e.into()),
    };
    let after = match q.after.as_deref().filter(|a| !a.is_empty()).map(str::parse) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => return ui_error(ApiError::bad_request("after must be a task id")),
    };
    let (open, next) = match open_in(&s, &ws, after).await {
        Ok(o) => o,
        Err(e) => return ui_error(e),
    };
    let body = html! {
        p.muted { "A conflict is a field both sides changed before they synced. The field's owner won; settle it here: "
            strong { "accept theirs" } " keeps the provider's value, " strong { "push ours" } " sends CollabHub's. Either is recorded in the ledger." }
        div.scroll {
            table #conflicts {
                thead { tr { th { "Task" } th { "Field" } th { "Ours (CollabHub)" } th { "Theirs (provider)" } th { "Verdict" } th { "When" } th {} } }
                tbody {
                    @for c in &open {
                        tr.conflict data-field=(c.field.as_str()) {
                            td { a href=(format!("/ui/tasks/{}", c.task.id)) { (c.task.fields.title) } }
                            td { (c.field.as_str()) }
                            td.ours { (value_text(&c.ours)) }
                            td.theirs { (value_text(&c.theirs)) }
                            td.muted { (c.verdict) }
                            td { (when(c.at)) }
                            td {
                                form.inline method="post" action=(format!("/ui/tasks/{}/conflicts/{}/theirs", c.task.id, c.field.as_str())) {
                                    button.accept-theirs type="submit" { "Accept theirs" }
                                }
                                " "
                                form.inline method="post" action=(format!("/ui/tasks/{}/conflicts/{}/ours", c.task.id, c.field.as_str())) {
                                    button.push-ours type="submit" { "Push ours" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if open.is_empty() && next.is_none() && after.is_none() { p.ok #no-conflicts { "No field is in conflict." } }
        @if let Some(n) = next {
            p { a #more-conflicts href=(format!("/ui/workspaces/{}/conflicts?after={n}", url_seg(ws.as_str()))) { "More tasks →" } }
        }
    };
    layout_page(
        &format!("Conflicts in {}", ws.as_str()),
        Some(ws.as_str()),
        body,
    )
    .into_response()
}

/// `POST /ui/tasks/{id}/conflicts/{field}/{theirs|ours}`.
pub(crate) async fn resolve(
    State(s): State<AppState>,
    Path((id, field, choice)): Path<(String, String, String)>,
) -> Response {
    match settle(&s, &id, &field, &choice).await {
        Ok(ws) => Redirect::to(&format!(
            "/ui/workspaces/{}/conflicts",
            url_seg(ws.as_str())
        ))
        .into_response(),
        Err(e) => ui_error(e),
    }
}

async fn settle(
    s: &AppState,
    id: &str,
    field: &str,
    choice: &str,
) -> Result<WorkspaceId, ApiError> {
    let t = find(s, id).await?;
    let field = Field::ALL
        .into_iter()
        .find(|f| f.as_str() == field)
        .ok_or_else(|| ApiError::not_found(format!("field {field}")))?;
    let ws = t.workspace_id.clone();
    let entries = s.store.task_ledger(&ws, t.id).await?;
    let Some((_, e)) = open_conflicts(&entries)
        .into_iter()
        .find(|(f, _)| *f == field)
    else {
        return Err(ApiError::conflict(format!(
            "{} is not in conflict",
            field.as_str()
        )));
    };
    let owner = super::sync_view::task_policy(s, &t)
        .await?
        .rule(field)
        .owner;
    let resolution = match choice {
        "theirs" => Resolution::AcceptTheirs,
        "ours" => Resolution::PushOurs(sides(&t, field, e, owner).0),
        _ => return Err(ApiError::not_found(format!("choice {choice}"))),
    };
    let actor = Actor::human("ui-admin").named("Admin (UI)");
    let receipt = s
        .engine
        .resolve_conflict(&ws, t.id, field, &resolution, &actor)
        .await?;
    if receipt.push_queued {
        s.wake.notify_waiters();
    }
    Ok(ws)
}
