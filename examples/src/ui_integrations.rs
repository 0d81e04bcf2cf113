//! The UI's integration pages: a list on each workspace page, and a page per integration
//! with its state and the life-cycle actions of the admin API (pause, resume, disable,
//! re-arm the webhook handshake), each recorded in the workspace's ledger.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ordonis_core::{Actor, IntegrationChange, IntegrationId, IntegrationRecord, WorkspaceId};

use crate::app::AppState;
use crate::errors::ApiError;
use crate::routes::integrations::webhook_url;
use crate::ui::{esc, page, ui_error};

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
pub(crate) async fn list(s: &AppState, ws: &WorkspaceId) -> Result<String, ApiError> {
    let mut b = String::from(
        "<h2>Integrations</h2><table id=\"integrations\"><thead><tr><th>Provider</th>\
<th>Site</th><th>State</th></tr></thead><tbody>",
    );
    for r in s.store.integrations(ws).await? {
        let _ = write!(
            b,
            "<tr><td><a href=\"/ui/integrations/{id}\">{p}</a></td><td>{site}</td><td>{st}</td></tr>",
            id = r.id,
            p = esc(r.provider.as_str()),
            site = esc(r.config["base_url"].as_str().unwrap_or("")),
            st = esc(r.state.as_str()),
        );
    }
    b.push_str("</tbody></table>");
    Ok(b)
}

async fn find(s: &AppState, id: &str) -> Result<IntegrationRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("integration {id}"));
    let iid: IntegrationId = id.parse().map_err(|_| not_found())?;
    s.store.integration(iid).await?.ok_or_else(not_found)
}

async fn integration_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let r = match find(&s, &id).await {
        Ok(r) => r,
        Err(e) => return ui_error(e),
    };
    let id = r.id.to_string();
    let mut b = format!(
        "<dl id=\"integration\"><dt>Workspace</dt><dd><a href=\"/ui/workspaces/{ws}\">{ws}</a></dd>\
<dt>Site</dt><dd>{site}</dd><dt>State</dt><dd id=\"state\">{st}</dd>\
<dt>Webhook URL</dt><dd><code>{hook}</code></dd><dt>Paused by a rate limit until</dt><dd>{pu}</dd></dl>",
        ws = esc(r.workspace_id.as_str()),
        site = esc(r.config["base_url"].as_str().unwrap_or("")),
        st = esc(r.state.as_str()),
        hook = esc(&webhook_url(&s, r.provider.as_str(), &id)),
        pu = esc(&r
            .paused_until
            .map(crate::routes::json::ts)
            .unwrap_or_else(|| "—".into())),
    );
    let actions: &[(&str, &str)] = match r.state {
        ordonis_core::IntegrationState::Active => &[
            ("pause", "Pause"),
            ("handshake", "Re-arm webhook handshake"),
            ("disable", "Disable"),
        ],
        ordonis_core::IntegrationState::Paused => &[("resume", "Resume"), ("disable", "Disable")],
        ordonis_core::IntegrationState::Disabled => &[],
    };
    for (action, label) in actions {
        let _ = write!(
            b,
            "<form class=\"inline\" method=\"post\" action=\"/ui/integrations/{id}/{action}\">\
<button>{label}</button></form> "
        );
    }
    page(&format!("{} integration", r.provider), &b).into_response()
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
