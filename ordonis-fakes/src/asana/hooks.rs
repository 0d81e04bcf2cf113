//! [`FakeAsana`]'s webhook health and faults:
//!
//! - every webhook carries Asana's health fields (`GET /webhooks/{gid}`: `created_at`,
//!   `last_success_at`, `last_failure_at`, `last_failure_content`,
//!   `failure_deletion_timestamp`, `delivery_retry_count`, `next_attempt_after`); a failed
//!   delivery (non-2xx, no answer, or [`FakeAsana::fail_deliveries`]) updates them;
//! - Asana deletes a webhook whose deliveries have failed for [`FAILURE_DELETION_AFTER`]
//!   (24 h); the fake does so on its clock, and, to compress that into a test, also after
//!   N consecutive failed deliveries ([`FakeAsana::set_webhook_failure_limit`]). A deleted
//!   webhook answers 404. The fake does not retry a failed delivery (Asana retries with
//!   backoff; the events stream keeps what was lost either way);
//! - [`FakeAsana::delete_webhook_silently`] deletes one as Asana does, without a call;
//! - [`FakeAsana::set_deliveries_enabled`] (`false`: nothing is sent and nothing counts as a
//!   failure, as when Asana drops deliveries) and [`FakeAsana::drop_next_deliveries`];
//! - faults for the next requests: [`FakeAsana::fail_next_reads`],
//!   [`FakeAsana::fail_next_requests`] (a status with headers, e.g. 429 with
//!   `Retry-After`) and [`FakeAsana::stall_next_reads`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{FakeAsana, FakeWebhook, Inner, data, errors, lock, rfc3339, sign};

/// How long Asana keeps a webhook whose deliveries fail before deleting it.
pub const FAILURE_DELETION_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What [`FakeAsana::fail_deliveries`] records as the target's answer.
const SIMULATED_FAILURE: &str = "500 Internal Server Error (the fake's delivery failure mode)";

#[derive(Clone, Debug)]
struct Health {
    created_at: OffsetDateTime,
    last_success_at: Option<OffsetDateTime>,
    last_failure_at: Option<OffsetDateTime>,
    last_failure_content: Option<String>,
    failing_since: Option<OffsetDateTime>,
    consecutive_failures: u32,
}

/// Health per webhook, deleted webhooks and the delivery switches.
#[derive(Debug, Default)]
pub(super) struct HealthBook {
    hooks: HashMap<String, Health>,
    deleted: HashSet<String>,
    /// Consecutive failed deliveries that delete a webhook (0: only the 24 h rule).
    failure_limit: u32,
    deliveries_off: bool,
    fail_all: bool,
    /// Deliveries still to drop silently ([`FakeAsana::drop_next_deliveries`]).
    drop_next: u32,
}

impl HealthBook {
    /// A webhook created now: the handshake counts as its first success.
    pub(super) fn created(&mut self, gid: &str, now: OffsetDateTime) {
        self.hooks.insert(
            gid.to_owned(),
            Health {
                created_at: now,
                last_success_at: Some(now),
                last_failure_at: None,
                last_failure_content: None,
                failing_since: None,
                consecutive_failures: 0,
            },
        );
    }

    /// Adds the health fields to a webhook's JSON.
    pub(super) fn describe(&self, gid: &str, v: &mut Value) {
        let Some(h) = self.hooks.get(gid) else {
            return;
        };
        let t = |x: Option<OffsetDateTime>| x.map_or(Value::Null, |x| Value::String(rfc3339(x)));
        v["created_at"] = Value::String(rfc3339(h.created_at));
        v["last_success_at"] = t(h.last_success_at);
        v["last_failure_at"] = t(h.last_failure_at);
        v["last_failure_content"] = h
            .last_failure_content
            .clone()
            .map_or(Value::Null, Value::String);
        v["delivery_retry_count"] = json!(0);
        v["next_attempt_after"] = Value::Null;
        v["failure_deletion_timestamp"] = t(h
            .failing_since
            .map(|f| f + time::Duration::try_from(FAILURE_DELETION_AFTER).unwrap_or_default()));
    }

    /// Records a delivery's outcome; true when the webhook must now be deleted.
    fn outcome(&mut self, gid: &str, now: OffsetDateTime, result: &Result<(), String>) -> bool {
        let limit = self.failure_limit;
        let Some(h) = self.hooks.get_mut(gid) else {
            return false;
        };
        match result {
            Ok(()) => {
                h.last_success_at = Some(now);
                h.failing_since = None;
                h.consecutive_failures = 0;
                false
            }
            Err(content) => {
                h.last_failure_at = Some(now);
                h.last_failure_content = Some(content.chars().take(500).collect());
                let since = *h.failing_since.get_or_insert(now);
                h.consecutive_failures += 1;
                let ttl = time::Duration::try_from(FAILURE_DELETION_AFTER).unwrap_or_default();
                (limit > 0 && h.consecutive_failures >= limit) || now - since >= ttl
            }
        }
    }
}

impl Inner {
    /// Sends one signed body to one webhook, recording its health; true on a 2xx.
    pub(super) async fn send(&self, h: &FakeWebhook, body: &[u8]) -> bool {
        let (off, fail_all) = {
            let mut b = lock(&self.health);
            let dropped = b.drop_next > 0;
            b.drop_next = b.drop_next.saturating_sub(1);
            (b.deliveries_off || dropped, b.fail_all)
        };
        if off {
            return false;
        }
        let result = if fail_all {
            Err(SIMULATED_FAILURE.to_owned())
        } else {
            self.deliveries.fetch_add(1, Ordering::SeqCst);
            let sent = self
                .http
                .post(&h.target)
                .header("content-type", "application/json")
                .header("x-hook-signature", sign(&h.secret, body))
                .body(body.to_vec())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    Err(format!("{status}\n\n{text}"))
                }
                Err(e) => Err(format!("no answer: {e}")),
            }
        };
        let now = self.now();
        let delete = lock(&self.health).outcome(&h.gid, now, &result);
        if delete {
            self.remove_webhook(&h.gid);
        }
        result.is_ok()
    }

    /// Deletes a webhook (by the API or by Asana); false when there was none.
    pub(super) fn remove_webhook(&self, gid: &str) -> bool {
        let removed = {
            let mut hooks = lock(&self.webhooks);
            let before = hooks.len();
            hooks.retain(|h| h.gid != gid);
            hooks.len() != before
        };
        if removed {
            let mut book = lock(&self.health);
            book.hooks.remove(gid);
            book.deleted.insert(gid.to_owned());
        }
        removed
    }
}

/// Whether an event passes a webhook's filters (any of them; no filters pass everything).
pub(super) fn passes(filters: &Value, event: &Value) -> bool {
    let Some(filters) = filters.as_array().filter(|f| !f.is_empty()) else {
        return true;
    };
    let same = |f: &Value, key: &str, actual: &Value| {
        f.get(key)
            .and_then(Value::as_str)
            .is_none_or(|want| actual.as_str() == Some(want))
    };
    filters.iter().any(|f| {
        same(f, "resource_type", &event["resource"]["resource_type"])
            && same(
                f,
                "resource_subtype",
                &event["resource"]["resource_subtype"],
            )
            && same(f, "action", &event["action"])
            && f.get("fields")
                .and_then(Value::as_array)
                .filter(|fields| !fields.is_empty())
                .is_none_or(|fields| {
                    event["action"] == "changed"
                        && fields.iter().any(|x| *x == event["change"]["field"])
                })
    })
}

/// `GET /webhooks/{gid}`: the webhook with its health; 404 once deleted.
pub(super) async fn get_webhook(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let hook = lock(&s.webhooks).iter().find(|h| h.gid == gid).cloned();
    match hook {
        Some(h) => data(StatusCode::OK, s.webhook_full(&h)),
        None => errors(StatusCode::NOT_FOUND, "Unknown object"),
    }
}

#[derive(Clone, Debug)]
enum FaultKind {
    Status(u16, Vec<(String, String)>),
    Stall(Duration),
}

#[derive(Clone, Debug)]
struct Fault {
    remaining: u32,
    reads_only: bool,
    kind: FaultKind,
}

/// The fault the next requests answer with (a new one replaces the old).
#[derive(Debug, Default)]
pub(super) struct Faults(Option<Fault>);

impl Faults {
    fn take(&mut self, read: bool) -> Option<FaultKind> {
        let f = self.0.as_mut()?;
        if f.reads_only && !read {
            return None;
        }
        let kind = f.kind.clone();
        f.remaining = f.remaining.saturating_sub(1);
        if f.remaining == 0 {
            self.0 = None;
        }
        Some(kind)
    }
}

fn fault_message(status: u16) -> &'static str {
    match status {
        429 => "You have made too many requests recently. Please, be chill.",
        401 => "Not Authorized",
        403 => "You do not have access to the requested object.",
        404 => "Unknown object",
        s if s >= 500 => "Server Error",
        _ => "Bad Request",
    }
}

/// The middleware that answers requests with a pending fault.
pub(super) async fn faults(State(s): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let read = req.method() == Method::GET;
    let fault = lock(&s.faults).take(read);
    match fault {
        None => next.run(req).await,
        Some(FaultKind::Stall(d)) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Some(FaultKind::Status(status, headers)) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = errors(code, fault_message(status));
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp.into_response()
        }
    }
}

impl FakeAsana {
    fn set_fault(&self, n: u32, reads_only: bool, kind: FaultKind) {
        lock(&self.inner.faults).0 = (n > 0).then_some(Fault {
            remaining: n,
            reads_only,
            kind,
        });
    }

    /// The next `n` reads (`GET`, any endpoint) answer `status` with `headers` and Asana's
    /// error body, e.g. `fail_next_reads(3, 429, &[("Retry-After", "2")])` for a storm.
    /// Replaces any pending fault; `n = 0` clears it.
    pub fn fail_next_reads(&self, n: u32, status: u16, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.set_fault(n, true, FaultKind::Status(status, headers));
    }

    /// Like [`FakeAsana::fail_next_reads`], for any request (writes included).
    pub fn fail_next_requests(&self, n: u32, status: u16, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.set_fault(n, false, FaultKind::Status(status, headers));
    }

    /// The next `n` reads are answered only after `delay` (a client timeout).
    pub fn stall_next_reads(&self, n: u32, delay: Duration) {
        self.set_fault(n, true, FaultKind::Stall(delay));
    }

    /// Whether deliveries are sent at all (default: yes). Off, events are still recorded in
    /// the streams but no webhook hears them, and nothing counts as a failed delivery.
    pub fn set_deliveries_enabled(&self, on: bool) {
        lock(&self.inner.health).deliveries_off = !on;
    }

    /// Drops the next `n` deliveries (one per webhook per batch) silently: not sent, not a
    /// failure, as Asana's at-most-once delivery sometimes does. The events stay in the
    /// streams.
    pub fn drop_next_deliveries(&self, n: u32) {
        lock(&self.inner.health).drop_next = n;
    }

    /// Whether every delivery fails (nothing is sent; the webhook records a failure, with
    /// content `500 Internal Server Error …`), as when the target is down.
    pub fn fail_deliveries(&self, on: bool) {
        lock(&self.inner.health).fail_all = on;
    }

    /// Deletes a webhook after `n` consecutive failed deliveries, compressing Asana's rule
    /// (deleted after 24 h of failures, which the fake also applies on its clock). `0`
    /// (the default): only the 24 h rule.
    pub fn set_webhook_failure_limit(&self, n: u32) {
        lock(&self.inner.health).failure_limit = n;
    }

    /// Deletes a webhook as Asana does when it gives up on it: no call, no notice;
    /// `GET /webhooks/{gid}` answers 404 from now on. `false` when there was none.
    pub fn delete_webhook_silently(&self, gid: &str) -> bool {
        self.inner.remove_webhook(gid)
    }

    /// The webhook as `GET /webhooks/{gid}` answers it (with health), `None` once deleted.
    pub fn webhook_state(&self, gid: &str) -> Option<Value> {
        let hook = lock(&self.inner.webhooks)
            .iter()
            .find(|h| h.gid == gid)
            .cloned()?;
        Some(self.inner.webhook_full(&hook))
    }

    /// Whether Asana deleted (or was asked to delete) this webhook.
    pub fn webhook_deleted(&self, gid: &str) -> bool {
        lock(&self.inner.health).deleted.contains(gid)
    }
}
