//! HTTP routes: the public ones (webhooks, health, metrics) and the admin API under `/api`.

pub mod events;
pub mod integrations;
pub mod json;
pub mod ledger;
pub mod pushes;
pub mod tasks;
pub mod webhook;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use ordonis_core::StoreExt;

use crate::errors::ApiError;
use crate::state::AppState;

/// `/healthz`, `/metrics` and the webhook route.
pub fn public(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/integrations/{provider}/{integration_id}/webhook",
            post(webhook::receive),
        )
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
        .route("/api/tasks", get(tasks::list))
        .route("/api/tasks/{id}", get(tasks::get).patch(tasks::change))
        .route("/api/tasks/{id}/ledger", get(tasks::ledger))
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
        .fallback(api_not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

/// The fallback of the whole router (the API's is merged into it). The token layer covers
/// only matched routes, so an unknown `/api/...` path checks the token here: 401 before 404,
/// so that paths cannot be probed without it.
async fn api_not_found(State(s): State<AppState>, req: Request) -> ApiError {
    let path = req.uri().path();
    if (path == "/api" || path.starts_with("/api/")) && !bearer_ok(&s, req.headers()) {
        return ApiError::unauthorized();
    }
    ApiError::not_found("no such route")
}

fn bearer_ok(s: &AppState, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| s.token_ok(t.trim()))
}

async fn require_token(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if !bearer_ok(&s, req.headers()) {
        return ApiError::unauthorized().into_response();
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

async fn metrics(State(s): State<AppState>) -> Response {
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
