//! The UI's integration pages: a list on each workspace page, and a page per integration
//! with its health (backlog, last delivery, failures and their errors, paused-until), its
//! webhook URL and the life-cycle actions of the admin API (pause, resume, disable, re-arm
//! the webhook handshake), each recorded in the workspace's ledger.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use ordonis_core::store::{Job, JobFilter, JobState, Queue};
use ordonis_core::{Actor, ApiBudget, IntegrationChange, IntegrationId, IntegrationRecord};

use crate::errors::ApiError;
use crate::routes::integrations::webhook_url;
use crate::state::AppState;
use crate::ui::{page, ui_error, url_seg, when};

/// Who acts through the UI (the ledger's actor).
fn operator() -> Actor {
    Actor::service("ui")
}

/// The routes (behind the UI's session check).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/integrations/{id}", get(integration_page))
        .route("/ui/integrations/{id}/{action}", post(integration_action))
}

/// The workspace page's list of integrations.
pub(crate) fn list(s: &AppState, list: &[IntegrationRecord]) -> Markup {
    html! {
        h2 { "Integrations" }
        div.scroll {
            table #integrations {
                thead { tr { th { "Provider" } th { "Site" } th { "State" } th { "Paused until" } th { "Webhook URL" } } }
                tbody {
                    @for r in list {
                        tr {
                            td { a href=(format!("/ui/integrations/{}", r.id)) { (r.provider.as_str()) } }
                            td { (r.config["base_url"].as_str().unwrap_or("")) }
                            td { (r.state.as_str()) }
                            td { @match r.paused_until { Some(t) => (when(t)), None => "—" } }
                            td { code { (webhook_url(s, r.provider.as_str(), &r.id.to_string())) } }
                        }
                    }
                }
            }
        }
    }
}

/// The provider's API budget in a line: "paused until … (jira-quota-tenant-based)", or
/// "near limit, 12% left, resets …", and the kinds of call a burst limit holds back.
fn budget_line(b: Option<&ApiBudget>) -> Markup {
    let now = time::OffsetDateTime::now_utc();
    let Some(b) = b else {
        return html! { "nothing seen yet" };
    };
    let reason = b.reason.as_deref().unwrap_or("rate limit");
    html! {
        @if let Some(p) = b.paused_until.filter(|p| *p > now) {
            span.bad { "paused until " (when(p)) " (" (reason) ")" }
        } @else {
            @if b.near_limit_at(now) { span.bad { "near limit" } } @else { "within limits" }
            @if let Some(p) = b.percent_left() { ", " (p) "% left" }
            @if let Some(t) = b.resets_at.filter(|t| *t > now) { ", resets " (when(t)) }
        }
        @for (kind, until) in b.held.iter().filter(|(_, u)| **u > now) {
            "; " code { (kind) } " held by a burst limit until " (when(*until))
        }
    }
}

async fn find(s: &AppState, id: &str) -> Result<IntegrationRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("integration {id}"));
    let iid: IntegrationId = id.parse().map_err(|_| not_found())?;
    s.store.integration(iid).await?.ok_or_else(not_found)
}

/// An integration's queue rows in one state (up to 1000).
async fn rows(
    s: &AppState,
    r: &IntegrationRecord,
    queue: Queue,
    state: Option<JobState>,
    limit: usize,
) -> Result<Vec<Job>, ApiError> {
    let filter = JobFilter {
        workspace_id: Some(r.workspace_id.clone()),
        integration_id: Some(r.id),
        state,
        limit,
        ..JobFilter::new(queue)
    };
    Ok(s.store.jobs(&filter).await?)
}

async fn integration_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match render(&s, &id).await {
        Ok(r) => r,
        Err(e) => ui_error(e),
    }
}

async fn render(s: &AppState, id: &str) -> Result<Response, ApiError> {
    let r = find(s, id).await?;
    let id = r.id.to_string();
    let mut backlog = [0usize; 2];
    let mut failures: Vec<Job> = Vec::new();
    for (i, queue) in [Queue::Inbox, Queue::Outbox].into_iter().enumerate() {
        for state in [JobState::Pending, JobState::Processing] {
            backlog[i] += rows(s, &r, queue, Some(state), 1000).await?.len();
        }
        for state in [JobState::Failed, JobState::Dead] {
            failures.extend(rows(s, &r, queue, Some(state), 20).await?);
        }
    }
    let last = rows(s, &r, Queue::Inbox, None, 1)
        .await?
        .into_iter()
        .find_map(Job::into_event);
    let healthy = failures.is_empty() && r.paused_until.is_none();
    let sync = s.engine.sync_report(r.id).await.map_err(ApiError::from)?;
    let denied = s
        .engine
        .access_problems(r.id)
        .await
        .map_err(ApiError::from)?;
    let budget = s.engine.api_budget(r.id).await.map_err(ApiError::from)?;
    let actions: &[(&str, &str)] = match r.state {
        ordonis_core::IntegrationState::Active => &[
            ("reconcile", "Reconcile now"),
            ("pause", "Pause"),
            ("handshake", "Re-arm webhook handshake"),
            ("disable", "Disable"),
        ],
        ordonis_core::IntegrationState::Paused => &[("resume", "Resume"), ("disable", "Disable")],
        ordonis_core::IntegrationState::Disabled => &[],
    };
    let ws = url_seg(r.workspace_id.as_str());
    let body = html! {
        dl #integration {
            dt { "Workspace" } dd { a href=(format!("/ui/workspaces/{ws}")) { (r.workspace_id.as_str()) } }
            dt { "Site" } dd { (r.config["base_url"].as_str().unwrap_or("")) }
            dt { "State" } dd #state { (r.state.as_str()) }
            dt { "Health" } dd #health {
                @if healthy { span.ok { "healthy" } } @else { span.bad { (failures.len()) " failed or dead rows" } }
            }
            dt { "Backlog" } dd #backlog {
                a href=(format!("/ui/events?workspace_id={ws}&integration_id={id}")) { (backlog[0]) " inbound" } ", "
                a href=(format!("/ui/pushes?workspace_id={ws}&integration_id={id}")) { (backlog[1]) " outbound" }
            }
            dt { "Last delivery" } dd #last-delivery { @match &last { Some(e) => (when(e.received_at)), None => "none yet" } }
            dt { "Webhook URL" } dd { code { (webhook_url(s, r.provider.as_str(), &id)) } }
            @if r.provider.as_str() == "asana" {
                dt { "Webhook handshake" } dd #handshake {
                    @match crate::routes::integrations::handshake_until(&r) {
                        Some(t) => { "accepted until " (when(t)) }
                        None => { "not accepted (re-arm it below before creating a webhook; it stays open for "
                            (s.engine.config().handshake_window.as_secs()) " s)" }
                    }
                }
            }
            dt { "Paused by a rate limit until" } dd { @match r.paused_until { Some(t) => (when(t)), None => "—" } }
            dt { "API budget" } dd #budget { (budget_line(budget.as_ref())) }
        }
        h2 { "Repair loop" }
        @match &sync {
            None => p #sync { "No scope: this integration only reacts to webhooks." }
            Some(y) => dl #sync {
                dt { "Backfill" } dd #backfill {
                    (format!("{:?}", y.backfill.state).to_lowercase()) ", " (y.backfill.imported) " imported"
                    @if let Some(e) = &y.backfill.error { " — " span.bad { (e) } }
                }
                dt { "Last reconcile" } dd #reconcile {
                    @match y.reconcile.last_run_at { Some(t) => (when(t)), None => "not yet" }
                    ", " (y.reconcile.repaired) " fields repaired"
                    @if let Some(e) = &y.reconcile.error { " — " span.bad { (e) } }
                }
                dt { "Last good reconcile" } dd { @match y.reconcile.last_ok_at { Some(t) => (when(t)), None => "—" } }
                dt { "Next reconcile" } dd #next-reconcile { @match y.reconcile.next_run_at { Some(t) => (when(t)), None => "running" } }
                dt { "Webhook" } dd #webhook {
                    @match y.webhook.state {
                        ordonis_core::WebhookState::Healthy => span.ok { "healthy" },
                        ordonis_core::WebhookState::Unknown => span { "unknown" },
                        st => span.bad { (st.as_str()) },
                    }
                    @if let Some(d) = &y.webhook.detail { " — " (d) }
                    @if let Some(x) = &y.webhook.external_id { " (" code { (x) } ")" }
                }
            }
        }
        @for (action, label) in actions {
            form.inline method="post" action=(format!("/ui/integrations/{id}/{action}")) {
                button type="submit" { (label) }
            }
            " "
        }
        @if !denied.is_empty() {
            h2 { "Objects it may not read" }
            p.bad { (denied.len()) " objects answered 403: the token's scope or the account's access no longer covers them. Their tasks are kept and sync again once readable." }
            div.scroll {
                table #access-denied {
                    thead { tr { th { "Object" } th { "Since" } th { "Events" } th { "Error" } } }
                    tbody {
                        @for p in &denied {
                            tr { td { code { (p.external_id) } } td { (when(p.since)) } td { (p.events) } td { (p.error) } }
                        }
                    }
                }
            }
        }
        @if !failures.is_empty() {
            h2 { "Errors" }
            div.scroll {
                table #errors {
                    thead { tr { th { "Queue" } th { "State" } th { "Attempts" } th { "Error" } } }
                    tbody {
                        @for j in &failures {
                            @let (queue, state, attempts, err) = match j {
                                Job::Event(e) => ("inbox", e.state, e.attempts, e.last_error.clone()),
                                Job::Push(p) => ("outbox", p.state, p.attempts, p.last_error.clone()),
                            };
                            tr { td { (queue) } td { (state.as_str()) } td { (attempts) } td { (err.unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        &format!("{} integration", r.provider),
        Some(r.workspace_id.as_str()),
        body,
    )
    .into_response())
}

async fn integration_action(
    State(s): State<AppState>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let r = match find(&s, &id).await {
        Ok(r) => r,
        Err(e) => return ui_error(e),
    };
    let paused = |p| IntegrationChange {
        paused: Some(p),
        ..IntegrationChange::default()
    };
    let done = match action.as_str() {
        "pause" => s
            .engine
            .change_integration(r.id, paused(true), &operator())
            .await
            .map(drop),
        "resume" => s
            .engine
            .change_integration(r.id, paused(false), &operator())
            .await
            .map(drop),
        "disable" => s
            .engine
            .disable_integration(r.id, &operator())
            .await
            .map(drop),
        "handshake" => s.engine.expect_handshake(r.id).await,
        "reconcile" => s.engine.reconcile_now(&r.workspace_id, r.id).await,
        _ => return ui_error(ApiError::not_found(format!("action {action}"))),
    };
    match done {
        Ok(()) => {
            s.wake.notify_waiters();
            Redirect::to(&format!("/ui/integrations/{}", r.id)).into_response()
        }
        Err(e) => ui_error(e.into()),
    }
}
