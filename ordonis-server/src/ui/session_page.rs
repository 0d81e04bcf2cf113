//! `GET /ui/sessions/{id}`: an agent session's activity timeline, each entry checked against
//! the signed checkpoint, its artifacts, and where it shows in Jira or Asana.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use ordonis_core::{AgentSession, LedgerEntry, Op};

use super::layout::{page, when};
use super::task_page::verification;
use super::{safe_href, ui_error, url_seg};
use crate::errors::ApiError;
use crate::state::AppState;

/// `GET /ui/sessions/{id}`.
pub(crate) async fn session_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match render(&s, &id).await {
        Ok(r) => r,
        Err(e) => ui_error(e),
    }
}

async fn render(s: &AppState, id: &str) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("session {id}"));
    let sid: ordonis_core::SessionId = id.parse().map_err(|_| not_found())?;
    let session = s.store.session(sid).await?.ok_or_else(not_found)?;
    let ws = session.workspace_id.clone();
    let entries: Vec<LedgerEntry> = s
        .store
        .task_ledger(&ws, session.task_id)
        .await?
        .into_iter()
        .filter(|e| e.record.session.as_ref().is_some_and(|r| r.id == sid))
        .collect();
    let checks = verification(s, &ws, &entries).await;
    let comments = s.engine.comments(&ws, session.task_id).await?;
    let title = session_heading(&session);
    let body = html! {
        p { a href=(format!("/ui/tasks/{}", session.task_id)) { "← the task" } }
        dl #session {
            dt { "State" } dd #session-state { (session.state.as_str()) }
            dt { "Opened" } dd { (when(session.created_at)) }
            dt { "Last activity" } dd { (when(session.last_activity_at)) }
        }
        h2 { "Activity" }
        @if let Err(e) = &checks { p.bad { "The log does not verify: " (e) } }
        ol #activity {
            @for (i, e) in entries.iter().enumerate() {
                @let r = e.record.session.as_ref();
                li.step {
                    span.muted { "#" (e.idx) " · " (when(e.logged_at)) " · " }
                    strong { (e.record.actor.display_name.clone().unwrap_or_else(|| e.record.actor.id.clone())) }
                    @if let Some(p) = e.record.actor.on_behalf_of.last() {
                        " " span.muted { "for " (p.display_name.clone().unwrap_or_else(|| p.id.clone())) }
                    }
                    " · "
                    @match (e.record.op, r.and_then(|r| r.activity.as_ref()), r.and_then(|r| r.artifact.as_ref()), r.and_then(|r| r.state)) {
                        (Op::SessionActivity, Some((_, a)), _, _) => {
                            span class=(format!("kind kind-{}", a.kind.as_str())) { (a.kind.as_str()) }
                            @if let Some(b) = &a.body { div.body style="white-space: pre-wrap" { (b) } }
                            @if let Some(act) = &a.action {
                                div.body { code { (act) } @if let Some(p) = &a.parameter { " (" code { (p) } ")" } @if let Some(res) = &a.result { " → " (res) } }
                            }
                        }
                        (Op::SessionArtifact, _, Some(a), _) => {
                            "artifact: "
                            @match safe_href(&a.url, s.allow_any_provider_url) {
                                Some(href) => a href=(href) { (a.title) },
                                None => span { (a.title) },
                            }
                        }
                        (_, _, _, Some(st)) => { "state: " strong { (st.as_str()) } }
                        _ => { (format!("{:?}", e.record.op)) }
                    }
                    " "
                    @match checks.as_ref().map(|c| c.get(i)) {
                        Ok(Some(Ok(()))) => span.ok.verified { "✓ verified" },
                        Ok(Some(Err(why))) => span.bad { "✗ " (why) },
                        _ => span.bad { "✗" },
                    }
                }
            }
        }
        h2 { "In the provider" }
        @if session.links.is_empty() && !session.activities.iter().any(|a| a.comment_id.is_some()) {
            p.muted { "Not shown in a provider (the task is not linked, or nothing was posted yet)." }
        }
        ul #projection {
            @for l in &session.links {
                li {
                    "link " strong { (l.title) } " → " span.muted { (l.url) } " · "
                    @if let Some(err) = &l.error { span.bad { "refused: " (err) } }
                    @else if l.pending { span { "pending" } }
                    @else { span.ok { "shown" } }
                }
            }
            @for a in session.activities.iter().filter(|a| a.comment_id.is_some() && a.kind != ordonis_core::ActivityKind::Prompt) {
                @let c = comments.iter().find(|c| Some(c.id) == a.comment_id);
                li {
                    "comment for the " (a.kind.as_str()) " " code { (a.id) } " · "
                    @match c.and_then(|c| c.sync.as_ref()) {
                        Some(sync) => span class=(format!("sync sync-{}", sync.state.as_str())) { (sync.state.as_str()) },
                        None => span.muted { "not pushed" },
                    }
                }
            }
        }
    };
    Ok(page(&title, Some(ws.as_str()), body).into_response())
}

/// "Triage bot for Alice Smith".
pub(crate) fn session_heading(session: &AgentSession) -> String {
    let agent = session
        .agent
        .display_name
        .clone()
        .unwrap_or_else(|| session.agent.id.clone());
    match session.principal() {
        Some(p) => format!(
            "{agent} for {}",
            p.display_name.clone().unwrap_or_else(|| p.id.clone())
        ),
        None => agent,
    }
}

/// The link to a session's page.
pub(crate) fn session_href(session: &AgentSession) -> String {
    format!("/ui/sessions/{}", url_seg(&session.id.to_string()))
}
