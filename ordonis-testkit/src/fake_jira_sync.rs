//! What the fake Jira's repair loop needs beyond issues: the search index and its lag, a
//! switch that drops webhook deliveries, injected read failures, and dynamic (OAuth/Connect
//! app) webhooks with their 30-day expiry and a fake clock.
//!
//! The HTTP side of the search is [`crate::fake_jira_search`]; this module keeps what the
//! index saw when. Every change to an issue is recorded with the time it was made; a search
//! sees each issue as it was `lag` ago (an issue created within the lag is not in the index
//! yet), except the ids the request names in `reconcileIssues`, which are read fresh, as
//! Jira documents for read-after-write consistency.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::fake_jira::{Inner, authorized, error, fault_response, lock, now_ms};
use crate::fake_jira_search::{parse_jql, reconcile_ids, search_page};

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

/// An injected answer to a read: status and headers.
type ReadFault = (u16, Vec<(String, String)>);

/// A registered dynamic webhook.
#[derive(Clone, Debug)]
pub(crate) struct DynHook {
    events: Vec<String>,
    jql: String,
    expires_ms: i64,
}

/// The repair-loop state of a fake site.
#[derive(Debug)]
pub(crate) struct SyncState {
    lag_ms: AtomicU64,
    /// Per issue id: (when the change was made, the issue after it), oldest first.
    history: Mutex<HashMap<String, VecDeque<(i64, Value)>>>,
    webhooks_enabled: AtomicBool,
    dropped: AtomicU64,
    read_faults: Mutex<VecDeque<ReadFault>>,
    clock_offset_ms: AtomicI64,
    hooks: Mutex<BTreeMap<i64, DynHook>>,
    hook_url: Mutex<Option<String>>,
    next_hook_id: AtomicI64,
}

impl Default for SyncState {
    fn default() -> Self {
        Self {
            lag_ms: AtomicU64::new(0),
            history: Mutex::default(),
            webhooks_enabled: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            read_faults: Mutex::default(),
            clock_offset_ms: AtomicI64::new(0),
            hooks: Mutex::default(),
            hook_url: Mutex::new(None),
            next_hook_id: AtomicI64::new(1),
        }
    }
}

impl SyncState {
    pub(crate) fn set_lag(&self, lag: std::time::Duration) {
        self.lag_ms.store(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    fn lag(&self) -> i64 {
        i64::try_from(self.lag_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX)
    }

    /// Records an issue's new state (called on every change).
    pub(crate) fn record(&self, id: &str, issue: &Value) {
        let now = now_ms();
        let horizon = now.saturating_sub(self.lag());
        let mut h = lock(&self.history);
        let list = h.entry(id.to_owned()).or_default();
        list.push_back((now, issue.clone()));
        // Keep one state at or before the horizon (what the index shows) and all after it.
        while list.len() > 1 && list.get(1).is_some_and(|(at, _)| *at <= horizon) {
            list.pop_front();
        }
    }

    /// Drops a deleted issue's indexed states.
    pub(crate) fn forget(&self, id: &str) {
        lock(&self.history).remove(id);
    }

    /// Answers a search over the index's view of `issues` (each issue as it was `lag` ago,
    /// the `fresh` ids as they are), borrowing rather than copying the site's issues: a
    /// backfill benchmark pages through thousands of them.
    fn search(
        &self,
        issues: &BTreeMap<String, Value>,
        fresh: &BTreeSet<String>,
        body: &Value,
        base_url: &str,
    ) -> Result<Value, String> {
        let lag = self.lag();
        if lag == 0 {
            return search_page(issues.values(), body, base_url);
        }
        let horizon = now_ms().saturating_sub(lag);
        let history = lock(&self.history);
        let view = issues.iter().filter_map(|(id, cur)| {
            if fresh.contains(id) {
                Some(cur)
            } else {
                history
                    .get(id)
                    .and_then(|l| l.iter().rev().find(|(at, _)| *at <= horizon))
                    .map(|(_, v)| v)
            }
        });
        search_page(view, body, base_url)
    }

    pub(crate) fn set_webhooks_enabled(&self, on: bool) {
        self.webhooks_enabled.store(on, Ordering::SeqCst);
    }

    /// Whether a delivery may go out; counts it as dropped otherwise.
    pub(crate) fn delivery_allowed(&self) -> bool {
        if self.webhooks_enabled.load(Ordering::SeqCst) {
            true
        } else {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            false
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    pub(crate) fn fail_reads(&self, n: usize, status: u16, headers: Vec<(String, String)>) {
        let mut f = lock(&self.read_faults);
        for _ in 0..n {
            f.push_back((status, headers.clone()));
        }
    }

    /// The next injected read failure, if any.
    pub(crate) fn read_fault(&self) -> Option<Response> {
        let (status, headers) = lock(&self.read_faults).pop_front()?;
        Some(fault_response(status, headers))
    }

    /// The fake clock (real time plus [`advance_clock`](Self::advance_clock)), epoch ms.
    pub(crate) fn clock_ms(&self) -> i64 {
        now_ms().saturating_add(self.clock_offset_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn advance_clock(&self, by: std::time::Duration) {
        self.clock_offset_ms.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Drops expired dynamic webhooks; returns the live ones.
    fn live_hooks(&self) -> BTreeMap<i64, DynHook> {
        let now = self.clock_ms();
        let mut hooks = lock(&self.hooks);
        hooks.retain(|_, h| h.expires_ms > now);
        hooks.clone()
    }

    /// The live dynamic webhooks as `(id, expiration ms)`.
    pub(crate) fn dynamic_webhooks(&self) -> Vec<(i64, i64)> {
        self.live_hooks()
            .into_iter()
            .map(|(id, h)| (id, h.expires_ms))
            .collect()
    }

    /// The URL a delivery of `event` about `issue` goes to through a live dynamic webhook
    /// (its events name the event and its `jqlFilter` matches the issue).
    pub(crate) fn dynamic_target(&self, event: &str, issue: &Value) -> Option<String> {
        let url = lock(&self.hook_url).clone()?;
        self.live_hooks()
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
}

/// `POST /rest/api/3/search/jql`.
pub(crate) async fn search(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("POST /rest/api/3/search/jql".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = s.sync.read_fault() {
        return fault;
    }
    let fresh = match reconcile_ids(&body) {
        Ok(ids) => ids,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    // Lock order: issues, then history (as an edit records its new state).
    let issues = lock(&s.issues);
    match s.sync.search(&issues, &fresh, &body, &s.base_url) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
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
pub(crate) async fn register(
    State(s): State<Arc<Inner>>,
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
pub(crate) async fn list(
    State(s): State<Arc<Inner>>,
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
pub(crate) async fn refresh(
    State(s): State<Arc<Inner>>,
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
pub(crate) async fn delete(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("DELETE /rest/api/3/webhook".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let ids = match ids_of(&body) {
        Ok(ids) => ids,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    lock(&s.sync.hooks).retain(|id, _| !ids.contains(id));
    StatusCode::ACCEPTED.into_response()
}
