//! The dynamic webhook API of the fake Jira (`/rest/api/3/webhook`: register, list, refresh,
//! delete), as an OAuth or Connect app uses it, with the 30-day expiry on the site's fake
//! clock; and which registered webhook a delivery goes to.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::search::parse_jql;
use super::site::{DynHook, Site, SyncState, authorized, error, lock};

/// A dynamic webhook lives this long after its registration or last refresh (Jira: 30 days).
pub const DYNAMIC_WEBHOOK_LIFETIME_MS: i64 = 30 * 24 * 3600 * 1000;

/// The events a dynamic webhook may name (the spec's enum).
const EVENTS: [&str; 8] = [
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
    "comment_created",
    "comment_updated",
    "comment_deleted",
    "issue_property_set",
    "issue_property_deleted",
];

/// The URL a delivery of `event` about `issue` goes to through a live dynamic webhook (its
/// events name the event and its `jqlFilter` matches the issue).
pub(super) fn dynamic_target(sync: &SyncState, event: &str, issue: &Value) -> Option<String> {
    let url = lock(&sync.hook_url).clone()?;
    sync.live_hooks()
        .values()
        .any(|h| {
            h.events.iter().any(|e| e == event)
                && parse_jql(&h.jql)
                    .ok()
                    .and_then(|q| q.filter)
                    .is_none_or(|f| f.matches(issue))
        })
        .then_some(url)
}

/// The `webhookIds` of a body, or the 400's message.
fn ids_of(body: &Value) -> Result<BTreeSet<i64>, &'static str> {
    body.get("webhookIds")
        .and_then(Value::as_array)
        .ok_or("webhookIds is required")?
        .iter()
        .map(|v| v.as_i64().ok_or("webhookIds must be integers"))
        .collect()
}

/// `POST /rest/api/3/webhook`: registers dynamic webhooks.
pub(super) async fn register(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("POST /rest/api/3/webhook".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (Some(url), Some(list)) = (
        body.get("url").and_then(Value::as_str),
        body.get("webhooks").and_then(Value::as_array),
    ) else {
        return error(StatusCode::BAD_REQUEST, "url and webhooks are required");
    };
    *lock(&s.sync.hook_url) = Some(url.to_owned());
    let expires_ms = s.sync.clock_ms() + DYNAMIC_WEBHOOK_LIFETIME_MS;
    let results: Vec<Value> = list
        .iter()
        .map(|w| {
            let events: Vec<String> = w
                .get("events")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let jql = w.get("jqlFilter").and_then(Value::as_str).unwrap_or("");
            if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
                return json!({"errors": ["events must name known Jira webhook events"]});
            }
            if let Err(e) = parse_jql(jql) {
                return json!({"errors": [format!("Invalid JQL filter: {e}")]});
            }
            let id = s.sync.next_hook_id.fetch_add(1, Ordering::SeqCst);
            lock(&s.sync.hooks).insert(
                id,
                DynHook {
                    events,
                    jql: jql.to_owned(),
                    expires_ms,
                },
            );
            json!({"createdWebhookId": id})
        })
        .collect();
    Json(json!({ "webhookRegistrationResult": results })).into_response()
}

/// `GET /rest/api/3/webhook`: the app's live dynamic webhooks, paged by `startAt`.
pub(super) async fn list(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.log("GET /rest/api/3/webhook".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let start: usize = q.get("startAt").and_then(|v| v.parse().ok()).unwrap_or(0);
    let max: usize = q
        .get("maxResults")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let hooks = s.sync.live_hooks();
    let total = hooks.len();
    let values: Vec<Value> = hooks
        .into_iter()
        .skip(start)
        .take(max)
        .map(|(id, h)| {
            json!({"id": id, "jqlFilter": h.jql, "events": h.events, "expirationDate": h.expires_ms})
        })
        .collect();
    Json(json!({
        "startAt": start, "maxResults": max, "total": total,
        "isLast": start + values.len() >= total, "values": values,
    }))
    .into_response()
}

/// `PUT /rest/api/3/webhook/refresh`: extends the named webhooks' life by 30 days from now.
pub(super) async fn refresh(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("PUT /rest/api/3/webhook/refresh".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let ids = match ids_of(&body) {
        Ok(ids) => ids,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let _ = s.sync.live_hooks();
    let expires_ms = s.sync.clock_ms() + DYNAMIC_WEBHOOK_LIFETIME_MS;
    for (id, h) in lock(&s.sync.hooks).iter_mut() {
        if ids.contains(id) {
            h.expires_ms = expires_ms;
        }
    }
    Json(json!({ "expirationDate": expires_ms })).into_response()
}

/// `DELETE /rest/api/3/webhook`: removes the named webhooks (202).
pub(super) async fn delete(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("DELETE /rest/api/3/webhook".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // A write, which `FakeJira::fail_next_write` fails.
    if let Some(fault) = super::site::write_fault(&s) {
        return fault;
    }
    let ids = match ids_of(&body) {
        Ok(ids) => ids,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    lock(&s.sync.hooks).retain(|id, _| !ids.contains(id));
    StatusCode::ACCEPTED.into_response()
}
