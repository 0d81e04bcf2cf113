//! Jira Cloud's 2026 rate limits, as the fake answers them (developer.atlassian.com, *Rate
//! limiting*): a points quota per window and a burst switch on one endpoint. Both are off by
//! default; a middleware in front of every `/rest/` route applies them.
//!
//! **The quota** ([`FakeJira::set_quota`](super::FakeJira::set_quota)): every successful
//! answer costs points, as Jira's model charges them: a base of 1 point per call, plus 1 per
//! object a read returns (an issue read: 2; a search page: 1 + its issues); a write costs
//! the base only. Every answer carries the budget as Jira's beta headers do:
//!
//! - `Beta-RateLimit-Policy: "tenant-app-quota";q=<points>;w=<window s>`
//! - `Beta-RateLimit: "tenant-app-quota";r=<left>;t=<s until the window resets>`
//! - `X-Beta-RateLimit-NearLimit: true` while under 20 % is left.
//!
//! Once nothing is left, a call is a `429` with `RateLimit-Reason` and
//! `X-Beta-RateLimit-Reason: jira-quota-tenant-based`, `Beta-Retry-After: <s until the
//! reset>` and no `Retry-After` nor policy header (Jira's answers at exhaustion are missing
//! them, as developers reported), until the window resets.
//!
//! **The burst switch** ([`FakeJira::set_burst_limit`](super::FakeJira::set_burst_limit)):
//! while on, every call of one method and endpoint is a `429` with `RateLimit-Reason:
//! jira-burst-based` and `Retry-After`; other endpoints answer as usual, since Jira scopes the
//! burst limit to one endpoint and method.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::site::{Site, lock};

/// The quota's policy name in the beta headers.
const POLICY: &str = "\"tenant-app-quota\"";
/// The quota reason Jira names at exhaustion.
pub const QUOTA_REASON: &str = "jira-quota-tenant-based";
/// The burst limit's reason.
pub const BURST_REASON: &str = "jira-burst-based";
/// Largest answer the middleware reads to count a search's issues.
const MAX_COUNTED_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug)]
struct Quota {
    points: u64,
    window: Duration,
    left: u64,
    started: Instant,
}

impl Quota {
    /// Starts a new window when the last one is over; the seconds until it resets.
    fn roll(&mut self) -> u64 {
        if self.started.elapsed() >= self.window {
            self.started = Instant::now();
            self.left = self.points;
        }
        let left = self.window.saturating_sub(self.started.elapsed());
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

#[derive(Clone, Debug)]
struct Burst {
    method: String,
    pattern: String,
    retry_after: Duration,
}

/// The fake's limits: the quota, the burst switch, and the calls they refused.
#[derive(Debug, Default)]
pub(super) struct Limits {
    quota: Mutex<Option<Quota>>,
    burst: Mutex<Option<Burst>>,
    refused: Mutex<Vec<String>>,
}

impl Limits {
    pub(super) fn set_quota(&self, points: u64, window: Duration) {
        *lock(&self.quota) = Some(Quota {
            points,
            window,
            left: points,
            started: Instant::now(),
        });
    }

    pub(super) fn clear_quota(&self) {
        *lock(&self.quota) = None;
    }

    /// Spends points as calls would (to bring a test's budget near its limit).
    pub(super) fn spend(&self, points: u64) {
        if let Some(q) = lock(&self.quota).as_mut() {
            q.roll();
            q.left = q.left.saturating_sub(points);
        }
    }

    pub(super) fn set_burst(&self, method: &str, pattern: &str, retry_after: Duration) {
        *lock(&self.burst) = Some(Burst {
            method: method.to_ascii_uppercase(),
            pattern: pattern.to_owned(),
            retry_after,
        });
    }

    pub(super) fn clear_burst(&self) {
        *lock(&self.burst) = None;
    }

    pub(super) fn refused(&self) -> Vec<String> {
        lock(&self.refused).clone()
    }

    fn refuse(&self, line: String, reason: &str, headers: &[(&'static str, String)]) -> Response {
        lock(&self.refused).push(format!("{line} {reason}"));
        let mut resp = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({"errorMessages": ["Rate limit exceeded."], "errors": {}})),
        )
            .into_response();
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }
}

/// Whether `path` is the endpoint `pattern` names: the same segments, a `{…}` segment
/// matching any one.
fn matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
}

/// A read is a `GET`, or the search's `POST`.
fn is_read(method: &Method, path: &str) -> bool {
    method == Method::GET || path == "/rest/api/3/search/jql"
}

/// The middleware: the burst switch, then the quota, in front of every `/rest/` call.
pub(super) async fn enforce(State(s): State<Arc<Site>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with("/rest/") {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let line = format!("{method} {path}");
    let burst = lock(&s.limits.burst).clone();
    if let Some(b) = burst.filter(|b| b.method == method.as_str() && matches(&b.pattern, &path)) {
        let secs = b.retry_after.as_secs().max(1).to_string();
        return s.limits.refuse(
            line,
            BURST_REASON,
            &[
                ("ratelimit-reason", BURST_REASON.to_owned()),
                ("retry-after", secs),
            ],
        );
    }
    // `None`: no quota; `Some(Some(reset))`: spent until the reset.
    let spent = lock(&s.limits.quota).as_mut().map(|q| {
        let reset = q.roll();
        (q.left == 0).then_some(reset)
    });
    let Some(spent) = spent else {
        return next.run(req).await;
    };
    if let Some(reset) = spent {
        return s.limits.refuse(
            line,
            QUOTA_REASON,
            &[
                ("ratelimit-reason", QUOTA_REASON.to_owned()),
                ("x-beta-ratelimit-reason", QUOTA_REASON.to_owned()),
                ("beta-retry-after", reset.to_string()),
                ("beta-ratelimit", format!("{POLICY};r=0;t={reset}")),
            ],
        );
    }
    let resp = next.run(req).await;
    let read = is_read(&method, &path);
    let (mut parts, body) = resp.into_parts();
    let (body, objects) = if read && parts.status.is_success() {
        match axum::body::to_bytes(body, MAX_COUNTED_BODY).await {
            Ok(bytes) => {
                let issues = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("issues").and_then(Value::as_array).map(Vec::len));
                (Body::from(bytes), issues.map_or(1, |n| n as u64))
            }
            Err(_) => (Body::empty(), 1),
        }
    } else {
        (body, 0)
    };
    let cost = if parts.status.is_success() {
        1 + objects
    } else {
        0
    };
    let (points, window, left, reset) = {
        let mut guard = lock(&s.limits.quota);
        let Some(q) = guard.as_mut() else {
            return Response::from_parts(parts, body);
        };
        let reset = q.roll();
        q.left = q.left.saturating_sub(cost);
        (q.points, q.window.as_secs(), q.left, reset)
    };
    let h = &mut parts.headers;
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put(
        "beta-ratelimit-policy",
        format!("{POLICY};q={points};w={window}"),
    );
    put("beta-ratelimit", format!("{POLICY};r={left};t={reset}"));
    if left.saturating_mul(5) < points {
        put("x-beta-ratelimit-nearlimit", "true".to_owned());
    }
    Response::from_parts(parts, body)
}
