//! The fake Asana's webhook registry: `POST /webhooks` with the `X-Hook-Secret` handshake,
//! `GET /webhooks` (offset pages) and `DELETE /webhooks/{gid}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::*;

pub(super) fn webhook_json(h: &FakeWebhook) -> Value {
    json!({
        "gid": h.gid, "resource_type": "webhook",
        "resource": {"gid": h.resource}, "target": h.target,
        "active": true, "filters": h.filters
    })
}

impl Inner {
    /// A webhook as `GET /webhooks/{gid}` answers: the compact record plus its health.
    pub(super) fn webhook_full(&self, h: &FakeWebhook) -> Value {
        let mut v = webhook_json(h);
        lock(&self.health).describe(&h.gid, &mut v);
        v
    }
}

pub(super) async fn create_webhook(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let d = &req["data"];
    let (Some(resource), Some(target)) = (d["resource"].as_str(), d["target"].as_str()) else {
        return errors(StatusCode::BAD_REQUEST, "resource, target: Missing input");
    };
    // The handshake: the secret goes to the target, which must echo it.
    let filters = d.get("filters").cloned().unwrap_or_else(|| json!([]));
    let Ok(hook) = s.handshake(resource, target, filters).await else {
        return errors(
            StatusCode::BAD_REQUEST,
            "The remote server did not respond with the handshake secret.",
        );
    };
    let body = json!({"data": s.webhook_full(&hook), "X-Hook-Secret": hook.secret});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

pub(super) async fn list_webhooks(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !q.contains_key("workspace") {
        return errors(StatusCode::BAD_REQUEST, "workspace: Missing input");
    }
    let all: Vec<Value> = lock(&s.webhooks)
        .iter()
        .filter(|h| q.get("resource").is_none_or(|r| *r == h.resource))
        .map(webhook_json)
        .collect();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(all.len().max(1))
        .clamp(1, 100);
    let start = q
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let next = if end < all.len() {
        json!({"offset": end.to_string(), "path": format!("/webhooks?offset={end}"), "uri": ""})
    } else {
        Value::Null
    };
    axum::Json(json!({"data": page, "next_page": next})).into_response()
}

pub(super) async fn delete_webhook(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !s.remove_webhook(&gid) {
        return errors(StatusCode::NOT_FOUND, "Unknown object");
    }
    data(StatusCode::OK, json!({}))
}
