//! HTTP routes: the public ones (webhooks, health, metrics) and the admin API under `/api`.

pub mod comments;
pub mod events;
pub mod integrations;
pub mod json;
pub mod ledger;
pub mod paging;
pub mod people;
pub mod pushes;
pub mod sessions;
pub mod tasks;
pub mod vera;
pub mod webhook;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use ordonis_core::StoreExt;

use crate::errors::ApiError;
use crate::state::AppState;
use crate::throttle::{ClientKey, retry_after_secs};

/// `/healthz`, `/metrics` and the webhook route.
pub fn public(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/integrations/{provider}/{integration_id}/webhook",
            post(webhook::receive),
        )
        // The workspace's log as c2sp.org/tlog-tiles: read-only; who may read what is in
        // `vera`'s documentation.
        .route("/vera/{workspace_id}/checkpoint", get(vera::checkpoint))
        .route("/vera/{workspace_id}/tile/{*path}", get(vera::tile))
        .with_state(state)
}

/// The admin API (bearer token).
pub fn api(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/integrations",
            post(integrations::create).get(integrations::list),
        )
        .route(
            "/api/integrations/{id}",
            get(integrations::get)
                .patch(integrations::patch)
                .delete(integrations::delete),
        )
        .route(
            "/api/integrations/{id}/handshake",
            post(integrations::handshake),
        )
        .route(
            "/api/integrations/{id}/reconcile",
            post(integrations::reconcile),
        )
        .route(
            "/api/integrations/{id}/access_problems",
            get(integrations::access_problems),
        )
        .route("/api/tasks", get(tasks::list).post(tasks::create))
        .route("/api/tasks/{id}/links", post(tasks::link))
        .route(
            "/api/tasks/{id}/links/{integration_id}",
            axum::routing::delete(tasks::unlink),
        )
        .route("/api/workspaces/{workspace_id}/people", get(people::list))
        .route(
            "/api/workspaces/{workspace_id}/people/{principal}",
            axum::routing::put(people::put),
        )
        .route("/api/tasks/{id}", get(tasks::get).patch(tasks::change))
        .route("/api/tasks/{id}/ledger", get(tasks::ledger))
        .route(
            "/api/tasks/{id}/comments",
            get(comments::list).post(comments::add),
        )
        .route(
            "/api/tasks/{id}/sessions",
            get(sessions::list).post(sessions::open),
        )
        .route(
            "/api/sessions/{id}",
            get(sessions::get).patch(sessions::set_state),
        )
        .route("/api/sessions/{id}/activities", post(sessions::activity))
        .route("/api/sessions/{id}/artifacts", post(sessions::artifact))
        .route("/api/ledger/{workspace_id}/entries", get(ledger::entries))
        .route(
            "/api/comments/{id}",
            axum::routing::patch(comments::edit).delete(comments::delete),
        )
        .route("/api/events", get(events::list))
        .route("/api/events/{id}/replay", post(events::replay))
        .route("/api/pushes", get(pushes::list))
        .route("/api/pushes/{id}/replay", post(pushes::replay))
        .route(
            "/api/ledger/{workspace_id}/checkpoint",
            get(ledger::checkpoint),
        )
        .route("/api/ledger/{workspace_id}/export", get(ledger::export))
        .route(
            "/api/ledger/{workspace_id}/proof/{index}",
            get(ledger::proof),
        )
        .route("/api/ledger/{workspace_id}/keys", get(ledger::keys))
        .route(
            "/api/ledger/{workspace_id}/consistency",
            get(ledger::consistency),
        )
        .route(
            "/api/ledger/{workspace_id}/read-token",
            get(vera::read_token),
        )
        .route(
            "/api/ledger/{workspace_id}/cosignatures",
            post(vera::add_cosignatures),
        )
        .fallback(api_not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

/// The fallback of the whole router (the API's is merged into it). The token layer covers
/// only matched routes, so an unknown `/api/...` path checks the token here: 401 before 404,
/// so that paths cannot be probed without it.
async fn api_not_found(State(s): State<AppState>, req: Request) -> Response {
    let path = req.uri().path();
    if (path == "/api" || path.starts_with("/api/"))
        && let Some(refused) = refusal(&s, &req, |t| s.token_ok(t))
    {
        return refused;
    }
    ApiError::not_found("no such route").into_response()
}

/// The bearer token a request presents, if any.
fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Checks a request's bearer token with `ok` (`None`: accepted; else the answer), throttled per client as UI sign-ins are: a
/// client over the limit is answered `429` with `Retry-After` before its token is checked,
/// and a wrong token past the burst puts it over. A request without a token is `401`,
/// uncounted (it guesses nothing).
pub(crate) fn refusal(s: &AppState, req: &Request, ok: impl Fn(&str) -> bool) -> Option<Response> {
    let client = ClientKey::of_request(req.extensions());
    if let Some(wait) = s.bearer_failures().blocked(client) {
        return Some(too_many(wait));
    }
    match bearer(req.headers()) {
        Some(t) if ok(t) => None,
        Some(_) => Some(match s.bearer_failures().failed(client) {
            Some(wait) => too_many(wait),
            None => ApiError::unauthorized().into_response(),
        }),
        None => Some(ApiError::unauthorized().into_response()),
    }
}

/// `429 too_many_requests` with `Retry-After`.
fn too_many(wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    (
        [(axum::http::header::RETRY_AFTER, secs.to_string())],
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many wrong tokens from your address: try again in {secs} s"),
        ),
    )
        .into_response()
}

async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(refused) = refusal(&s, &req, |t| s.token_ok(t)) {
        return refused;
    }
    next.run(req).await
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.store.event_counts().await {
        Ok(_) => axum::Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "healthz: store unavailable");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable",
            )
            .into_response()
        }
    }
}

/// `/metrics`: for the admin token or the metrics token only, since its per-integration
/// series name integration ids, the unguessable part of webhook URLs.
async fn metrics(State(s): State<AppState>, req: Request) -> Response {
    if let Some(refused) = refusal(&s, &req, |t| s.metrics_token_ok(t)) {
        return refused;
    }
    match s.metrics.render(s.store.as_ref()).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
