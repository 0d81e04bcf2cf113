//! `POST /integrations/{provider}/{integration_id}/webhook`: the raw body goes to the core's
//! `ingest`, which verifies it, stores it durably and answers.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ordonis_core::{IngestOutcome, IntegrationId, ProviderKind};

use crate::errors::ApiError;
use crate::state::AppState;

fn too_large() -> Response {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "body too large").into_response()
}

/// Receives one delivery.
pub async fn receive(
    State(s): State<AppState>,
    Path((provider, integration_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = s.engine.config().max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        ordonis_core::metrics::webhook(&IngestOutcome::TooLarge);
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        ordonis_core::metrics::webhook(&IngestOutcome::TooLarge);
        return too_large();
    };
    let unknown = || {
        ordonis_core::metrics::webhook(&IngestOutcome::UnknownIntegration);
        ApiError::not_found("unknown integration").into_response()
    };
    let Ok(id) = integration_id.parse::<IntegrationId>() else {
        return unknown();
    };
    // The engine checks the path's provider on the integration it loads (and caches) anyway.
    let resp = s
        .engine
        .ingest_for(&ProviderKind::new(provider), id, &method, &headers, bytes)
        .await;
    // The engine counted the delivery (`ordonis_core::metrics`).
    if let IngestOutcome::Stored(_) = &resp.outcome {
        s.wake.notify_waiters();
    }
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, resp.body).into_response();
    for (name, value) in &resp.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            out.headers_mut().insert(n, v);
        }
    }
    out
}
