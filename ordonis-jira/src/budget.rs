//! Jira's rate limits as the client meets them: the points-based quota's headers read from
//! every answer into the integration's [`ApiBudget`], and the burst limit's hold on one kind
//! of call.
//!
//! Jira applies three independent limits (developer.atlassian.com, *Rate limiting*): an
//! hourly points quota per app and tenant (`jira-quota-tenant-based`: the whole integration
//! waits, which the engine does), a per-second burst limit scoped to **one endpoint and one
//! HTTP method** (`jira-burst-based`: only that endpoint slows down), and a per-issue write
//! limit (`jira-per-issue-on-write`: only that issue). A call's kind is therefore its method
//! and its endpoint's path with the ids taken out ([`call_kind`]): a burst on the search does
//! not hold back issue reads, and one on issue reads does not hold back writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ordonis_core::{ApiBudget, IntegrationId};
use reqwest::header::HeaderMap;
use time::OffsetDateTime;

use crate::error::JiraError;

/// `RateLimit-Reason` of Jira's burst limit (per second, one endpoint and method).
pub const BURST_BASED: &str = "jira-burst-based";

/// The budgets of every integration a provider serves, as its answers last showed them.
#[derive(Debug, Default)]
pub(crate) struct Budgets(Mutex<HashMap<IntegrationId, ApiBudget>>);

impl Budgets {
    /// The integration's budget, with the holds that are over dropped.
    pub(crate) fn get(&self, id: IntegrationId) -> Option<ApiBudget> {
        let now = OffsetDateTime::now_utc();
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let b = map.get_mut(&id)?;
        b.held.retain(|_, until| *until > now);
        Some(b.clone())
    }

    fn update(&self, id: IntegrationId, f: impl FnOnce(&mut ApiBudget)) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(id).or_default());
    }
}

/// One integration's budget, as a client records into it.
#[derive(Clone, Debug)]
pub(crate) struct BudgetHandle {
    pub(crate) budgets: Arc<Budgets>,
    pub(crate) integration: IntegrationId,
}

impl BudgetHandle {
    /// Refuses, without asking Jira, a call of a kind a burst limit holds back: Jira answers
    /// a call made before its `Retry-After` with the same or a longer wait.
    pub(crate) fn check(&self, kind: &str) -> Result<(), JiraError> {
        let now = OffsetDateTime::now_utc();
        let held = self
            .budgets
            .get(self.integration)
            .and_then(|b| b.held.get(kind).copied())
            .filter(|until| *until > now);
        match held {
            Some(until) => Err(JiraError::RateLimited {
                retry_after: (until - now).try_into().unwrap_or(Duration::ZERO),
                reason: BURST_BASED.to_owned(),
                call: kind.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// Records what an answer's headers say of the quota (any status).
    pub(crate) fn observe(&self, headers: &HeaderMap) {
        let now = OffsetDateTime::now_utc();
        let near = ["x-ratelimit-nearlimit", "x-beta-ratelimit-nearlimit"]
            .iter()
            .any(|h| header(headers, h).is_some_and(|v| v.eq_ignore_ascii_case("true")));
        let left = header(headers, "beta-ratelimit").map(params);
        let policy = header(headers, "beta-ratelimit-policy").map(params);
        self.budgets.update(self.integration, |b| {
            b.seen_at = Some(now);
            b.near_limit = near;
            if let Some(p) = left {
                if let Some(r) = p.get("r") {
                    b.remaining = Some(*r);
                }
                if let Some(t) = p.get("t") {
                    b.resets_at = Some(now + Duration::from_secs(*t));
                }
            }
            // Jira leaves the policy out at exhaustion: the quota stays as last seen.
            if let Some(q) = policy.and_then(|p| p.get("q").copied()) {
                b.limit = Some(q);
            }
        });
    }

    /// Records a limit met: a burst holds back its kind of call, the per-issue limit only
    /// its issue (nothing here), anything else the whole integration.
    pub(crate) fn limited(&self, kind: &str, retry_after: Duration, reason: &str) {
        let until = OffsetDateTime::now_utc() + retry_after;
        self.budgets.update(self.integration, |b| {
            b.reason = Some(reason.to_owned());
            if reason == BURST_BASED {
                b.held.insert(kind.to_owned(), until);
            } else if reason != crate::error::PER_ISSUE_ON_WRITE {
                b.paused_until = Some(until);
            }
        });
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The integer parameters of the first item of a structured header
/// (`"tenant-app-quota";r=17842;t=2107` → r, t). Hand-written: the workspace has no RFC 9651
/// parser, and these headers carry nothing else Ordonis reads; other parameters are ignored.
fn params(v: &str) -> HashMap<&str, u64> {
    v.split(',')
        .next()
        .unwrap_or("")
        .split(';')
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim(), v.trim().trim_matches('"').parse().ok()?))
        })
        .collect()
}

/// The kind of a call for Jira's burst limit: its method and its path with the ids taken
/// out (`GET /rest/api/3/issue/{id}`). After the API prefix (`/rest/api/3`), a segment with
/// a digit (an id, `KAN-12`) or in capitals (a project key) is an id.
pub fn call_kind(method: &str, path: &str) -> String {
    let path: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, s)| {
            let id = s.bytes().any(|b| b.is_ascii_digit())
                || s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
            if i >= 3 && id { "{id}" } else { s }
        })
        .collect();
    format!("{method} /{}", path.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kind_is_the_method_and_the_endpoint() {
        assert_eq!(
            call_kind("GET", "/rest/api/3/issue/KAN-12"),
            "GET /rest/api/3/issue/{id}"
        );
        assert_eq!(
            call_kind("GET", "/rest/api/3/issue/10001"),
            call_kind("GET", "/rest/api/3/issue/20002")
        );
        assert_ne!(
            call_kind("PUT", "/rest/api/3/issue/10001"),
            call_kind("GET", "/rest/api/3/issue/10001")
        );
        assert_eq!(
            call_kind("GET", "/rest/api/3/project/HO/statuses"),
            "GET /rest/api/3/project/{id}/statuses"
        );
        assert_eq!(
            call_kind("POST", "/rest/api/3/search/jql"),
            "POST /rest/api/3/search/jql"
        );
    }

    #[test]
    fn quota_headers_are_read() {
        let p = params("\"tenant-app-quota\";r=17842;t=2107");
        assert_eq!((p.get("r"), p.get("t")), (Some(&17842), Some(&2107)));
        assert_eq!(
            params("\"tenant-app-quota\";q=100100;w=3600").get("q"),
            Some(&100_100)
        );
    }
}
