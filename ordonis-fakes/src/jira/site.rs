//! The fake Jira site's state, shared by its HTTP handlers and its [`FakeJira`](super::FakeJira)
//! handle: issues, the admin webhook, workflow settings, injected faults, and the repair-loop
//! state ([`SyncState`]: the search index's history and lag, the delivery switch, read faults,
//! dynamic webhooks and the fake clock). The handlers live in their own modules and import
//! this one; it imports only the pure modules (the workflow, the wiki converter).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ordonis_core::provider_http::hmac_sha256_hex;
use serde_json::{Value, json};

use super::wiki;
use super::workflow::{FakeWorkflow, status_value};

/// The account the REST API acts as (the author of echoed webhooks).
pub const API_ACCOUNT: &str = "ordonis-api-user";

/// `sha256=<hex>` of a body under a secret, as Jira signs admin webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

#[derive(Clone, Debug)]
pub(super) struct Hook {
    pub(super) url: String,
    pub(super) secret: String,
}

/// An injected answer to a write: status and headers.
type WriteFault = (u16, Vec<(String, String)>);

/// The site's priorities: (id, name).
pub const PRIORITIES: [(&str, &str); 5] = [
    ("1", "Highest"),
    ("2", "High"),
    ("3", "Medium"),
    ("4", "Low"),
    ("5", "Lowest"),
];

#[derive(Debug)]
pub(super) struct Site {
    pub(super) base_url: String,
    /// The search index, delivery switch, read faults and dynamic webhooks.
    pub(super) sync: SyncState,
    pub(super) issues: Mutex<BTreeMap<String, Value>>,
    pub(super) hook: Mutex<Option<Hook>>,
    /// Transitions into the done category require a resolution, and a "Won't Do" status is
    /// offered first (see [`FakeJira::require_resolution`]).
    pub(super) resolution_required: AtomicBool,
    /// The workflow set by [`FakeJira::set_workflow`]; `None`: the default one.
    pub(super) workflow: Mutex<Option<FakeWorkflow>>,
    /// `POST /rest/api/3/workflows/preview` answers 403 ([`FakeJira::deny_workflow_read`]).
    pub(super) workflow_read_denied: AtomicBool,
    /// Transition ids performed, in order.
    pub(super) transitions_done: Mutex<Vec<String>>,
    /// Transitions wait while this says `false` once [`FakeJira::hold_transitions_after`]'s
    /// count of them went through.
    pub(super) transition_gate: Mutex<Option<(usize, tokio::sync::watch::Receiver<bool>)>>,
    pub(super) gate_open: tokio::sync::watch::Sender<bool>,
    /// Answers for the next writes (edit, assign, transition): status and headers.
    pub(super) write_faults: Mutex<std::collections::VecDeque<WriteFault>>,
    /// Fields an edit may set; `None`: every field.
    pub(super) edit_screen: Mutex<Option<Vec<String>>>,
    /// Webhooks kept instead of sent (see [`FakeJira::capture_webhooks`]).
    pub(super) captured: Mutex<Option<Vec<Vec<u8>>>>,
    /// The Connect app deliveries through dynamic webhooks are signed for, as a JWT:
    /// `(issuer, shared secret)` ([`FakeJira::set_app_secret`]).
    ///
    /// [`FakeJira::set_app_secret`]: super::FakeJira::set_app_secret
    pub(super) app: Mutex<Option<(String, String)>>,
    /// The points quota and the burst switch ([`super::limits`]).
    pub(super) limits: super::limits::Limits,
    pub(super) echo: AtomicBool,
    /// Comments per issue id, oldest first.
    pub(super) comments: Mutex<BTreeMap<String, Vec<Value>>>,
    /// The next comment id.
    pub(super) next_comment: AtomicU64,
    /// Comment posts whose answer is lost after the comment is made
    /// ([`FakeJira::lose_next_comment_answer`](super::FakeJira::lose_next_comment_answer)).
    pub(super) lose_comment_answers: AtomicU64,
    /// Remote links per issue id, oldest first (as stored: `id`, `globalId`,
    /// `application`, `relationship`, `object`).
    pub(super) remote_links: Mutex<BTreeMap<String, Vec<Value>>>,
    /// The next remote link id.
    pub(super) next_link: AtomicU64,
    /// Remote link posts whose answer is lost after the link is made
    /// ([`FakeJira::lose_next_link_answer`](super::FakeJira::lose_next_link_answer)).
    pub(super) lose_link_answers: AtomicU64,
    /// Projects issues can be created in, by key ([`FakeJira::add_project`]).
    ///
    /// [`FakeJira::add_project`]: super::FakeJira::add_project
    pub(super) projects: Mutex<BTreeMap<String, FakeProject>>,
    /// Issue properties per issue id: key → value.
    pub(super) issue_properties: Mutex<BTreeMap<String, serde_json::Map<String, Value>>>,
    /// The next id of an issue created through the REST API.
    pub(super) next_issue: AtomicU64,
    /// Creates whose answer is lost after the issue is made
    /// ([`FakeJira::lose_next_create_answer`](super::FakeJira::lose_next_create_answer)).
    pub(super) lose_create_answers: AtomicU64,
    /// The site's users by account id ([`FakeJira::add_user`](super::FakeJira::add_user)).
    pub(super) users: Mutex<BTreeMap<String, FakeUser>>,
    pub(super) requests: Mutex<Vec<String>>,
    pub(super) deliveries: AtomicU64,
    pub(super) echoes: Arc<crate::in_flight::InFlight>,
    pub(super) http: reqwest::Client,
}

/// A project issues can be created in.
#[derive(Clone, Debug)]
pub(super) struct FakeProject {
    pub(super) id: String,
    pub(super) key: String,
    pub(super) name: String,
    pub(super) issue_types: Vec<FakeIssueType>,
    /// A create in it is a 403 (the account lacks *Create issues*).
    pub(super) create_denied: bool,
}

/// An issue type of a project, with the create screen's extra required fields.
#[derive(Clone, Debug)]
pub(super) struct FakeIssueType {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) subtask: bool,
    /// `(field id, field name)` the create screen requires (no default value).
    pub(super) required: Vec<(String, String)>,
}

/// A user of the site.
#[derive(Clone, Debug)]
pub(super) struct FakeUser {
    pub(super) name: String,
    /// `None`: hidden by the user's privacy settings.
    pub(super) email: Option<String>,
    /// An app's account (`accountType: "app"`).
    pub(super) app: bool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_jira() -> String {
    jira_time(now_ms())
}

pub(super) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Jira's `updated` form (`2026-12-02T14:05:00.000+0000`) as epoch ms.
pub fn parse_jira_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let fixed = match s.len().checked_sub(5) {
        Some(i) if s.is_char_boundary(i) && !s.ends_with('Z') && !s[i..].contains(':') => {
            format!("{}{}:{}", &s[..i], &s[i..i + 3], &s[i + 3..])
        }
        _ => s.to_owned(),
    };
    let t =
        time::OffsetDateTime::parse(&fixed, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Epoch ms in Jira's `updated` form, UTC.
pub fn jira_time(ms: i64) -> String {
    const JIRA: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // Formatting a UTC time with these components cannot fail.
    t.format(JIRA).unwrap_or_default()
}
pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("displayName"))
            .or_else(|| o.get("accountId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| Some(v.to_string())),
        other => Some(other.to_string()),
    }
}

impl Site {
    /// A user as Jira's REST API and webhooks show one: `accountId`, `displayName`,
    /// `accountType` (`atlassian` or `app`), `active`, and `emailAddress` unless the user
    /// hides it. An account the site does not know is shown by its id, as a person.
    pub(super) fn user_json(&self, account: &str) -> Value {
        let user = lock(&self.users).get(account).cloned();
        let mut v = json!({
            "self": format!("{}/rest/api/3/user?accountId={account}", self.base_url),
            "accountId": account,
            "displayName": user.as_ref().map_or(account, |u| u.name.as_str()),
            "accountType": if user.as_ref().is_some_and(|u| u.app) { "app" } else { "atlassian" },
            "active": true,
        });
        if let Some(email) = user.and_then(|u| u.email) {
            v["emailAddress"] = Value::String(email);
        }
        v
    }

    /// A comment on the issue changed: like Jira, the issue's `updated` moves to now (so a
    /// search on `updated` finds it), indexed after the usual lag.
    pub(super) fn touch(&self, id: &str) {
        let touched = {
            let mut issues = lock(&self.issues);
            let Some(issue) = issues.get_mut(id) else {
                return;
            };
            if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut) {
                f.insert("updated".into(), Value::String(now_jira()));
            }
            issue.clone()
        };
        self.sync.record(id, &touched);
    }

    /// The workflow every issue follows: the one set, or the default.
    pub(super) fn workflow(&self) -> FakeWorkflow {
        lock(&self.workflow).clone().unwrap_or_else(|| {
            FakeWorkflow::default_for(self.resolution_required.load(Ordering::SeqCst))
        })
    }

    pub(super) fn find(&self, id_or_key: &str) -> Option<(String, Value)> {
        let issues = lock(&self.issues);
        if let Some(v) = issues.get(id_or_key) {
            return Some((id_or_key.to_owned(), v.clone()));
        }
        issues
            .iter()
            .find(|(_, v)| v.get("key").and_then(Value::as_str) == Some(id_or_key))
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    pub(super) fn put_issue(&self, mut issue: Value) {
        let id = match issue.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return,
        };
        // Jira stores ADF; a v2 payload's wiki-markup description is stored converted.
        if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut)
            && let Some(Value::String(wiki)) = f.get("description")
        {
            let adf = wiki::wiki_to_adf(wiki);
            f.insert("description".into(), adf);
        }
        if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut)
            && !f.contains_key("updated")
        {
            f.insert("updated".into(), Value::String(now_jira()));
        }
        self.sync.record(&id, &issue);
        lock(&self.issues).insert(id, issue);
    }

    /// Applies a Jira-shaped field change; returns the changelog items.
    pub(super) fn apply(&self, id_or_key: &str, change: &Value) -> Option<Vec<Value>> {
        let (id, _) = self.find(id_or_key)?;
        let mut issues = lock(&self.issues);
        let issue = issues.get_mut(&id)?;
        let fields = issue.get_mut("fields")?.as_object_mut()?;
        let mut items = Vec::new();
        for (name, new) in change.as_object()?.iter() {
            let new = match name.as_str() {
                "status" => {
                    let want = new.get("name").and_then(Value::as_str).unwrap_or_default();
                    let wf = self.workflow();
                    match wf
                        .status_named(want)
                        .or_else(|| wf.statuses.first().cloned())
                    {
                        Some((sid, sname, cat)) => status_value(&sid, &sname, &cat),
                        None => new.clone(),
                    }
                }
                "assignee" => match new.get("accountId").and_then(Value::as_str) {
                    Some(a) => {
                        json!({"accountId": a, "displayName": new.get("displayName").cloned().unwrap_or_else(|| Value::String(a.to_owned()))})
                    }
                    None => Value::Null,
                },
                "priority" => {
                    let by_id = new.get("id").and_then(Value::as_str);
                    let by_name = new.get("name").and_then(Value::as_str);
                    match PRIORITIES.iter().find(|(id, name)| {
                        Some(*id) == by_id || by_name.is_some_and(|n| n.eq_ignore_ascii_case(name))
                    }) {
                        Some((id, name)) => json!({"id": id, "name": name}),
                        // A person's edit (update_issue) may name any priority.
                        None => match by_name {
                            Some(n) => json!({"name": n}),
                            None => Value::Null,
                        },
                    }
                }
                "description" => match new {
                    Value::String(wiki) => wiki::wiki_to_adf(wiki),
                    other => other.clone(),
                },
                _ => new.clone(),
            };
            let old = fields.get(name).cloned().unwrap_or(Value::Null);
            if old == new {
                continue;
            }
            // The changelog shows a description as wiki markup, like the v2 issue.
            let (from_s, to_s) = if name == "description" {
                (
                    wiki::adf_to_wiki(&old).as_str().map(str::to_owned),
                    wiki::adf_to_wiki(&new).as_str().map(str::to_owned),
                )
            } else {
                (text_of(&old), text_of(&new))
            };
            items.push(json!({
                "field": name,
                "fieldtype": "jira",
                "fieldId": name,
                "from": Value::Null,
                "fromString": from_s,
                "to": Value::Null,
                "toString": to_s,
            }));
            fields.insert(name.clone(), new);
        }
        if !items.is_empty() {
            fields.insert("updated".into(), Value::String(now_jira()));
            self.sync.record(&id, issue);
        }
        Some(items)
    }

    pub(super) fn log(&self, line: String) {
        lock(&self.requests).push(line);
    }
}

pub(super) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic ") || v.starts_with("Bearer "))
}

pub(super) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"errorMessages": [msg], "errors": {}}))).into_response()
}

/// The next injected write failure, if any.
pub(super) fn write_fault(s: &Site) -> Option<Response> {
    let (status, headers) = lock(&s.write_faults).pop_front()?;
    Some(fault_response(status, headers))
}

/// An injected failure: `status` with Jira's error body and these headers.
pub(super) fn fault_response(status: u16, headers: Vec<(String, String)>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = error(status, "limit reached (injected)");
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// An injected answer to a read: status and headers.
type ReadFault = (u16, Vec<(String, String)>);

/// A registered dynamic webhook.
#[derive(Clone, Debug)]
pub(super) struct DynHook {
    pub(super) events: Vec<String>,
    pub(super) jql: String,
    pub(super) expires_ms: i64,
}

/// The repair-loop state of a fake site.
#[derive(Debug)]
pub(super) struct SyncState {
    pub(super) lag_ms: AtomicU64,
    /// Per issue id: (when the change was made, the issue after it), oldest first.
    pub(super) history: Mutex<HashMap<String, VecDeque<(i64, Value)>>>,
    pub(super) webhooks_enabled: AtomicBool,
    pub(super) dropped: AtomicU64,
    pub(super) read_faults: Mutex<VecDeque<ReadFault>>,
    pub(super) clock_offset_ms: AtomicI64,
    pub(super) hooks: Mutex<BTreeMap<i64, DynHook>>,
    pub(super) hook_url: Mutex<Option<String>>,
    pub(super) next_hook_id: AtomicI64,
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
    pub(super) fn set_lag(&self, lag: std::time::Duration) {
        self.lag_ms.store(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    pub(super) fn lag(&self) -> i64 {
        i64::try_from(self.lag_ms.load(Ordering::SeqCst)).unwrap_or(i64::MAX)
    }

    /// Records an issue's new state (called on every change).
    pub(super) fn record(&self, id: &str, issue: &Value) {
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
    pub(super) fn forget(&self, id: &str) {
        lock(&self.history).remove(id);
    }

    pub(super) fn set_webhooks_enabled(&self, on: bool) {
        self.webhooks_enabled.store(on, Ordering::SeqCst);
    }

    /// Whether a delivery may go out; counts it as dropped otherwise.
    pub(super) fn delivery_allowed(&self) -> bool {
        if self.webhooks_enabled.load(Ordering::SeqCst) {
            true
        } else {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            false
        }
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::SeqCst)
    }

    pub(super) fn fail_reads(&self, n: usize, status: u16, headers: Vec<(String, String)>) {
        let mut f = lock(&self.read_faults);
        for _ in 0..n {
            f.push_back((status, headers.clone()));
        }
    }

    /// The next injected read failure, if any.
    pub(super) fn read_fault(&self) -> Option<Response> {
        let (status, headers) = lock(&self.read_faults).pop_front()?;
        Some(fault_response(status, headers))
    }

    /// The fake clock (real time plus [`advance_clock`](Self::advance_clock)), epoch ms.
    pub(super) fn clock_ms(&self) -> i64 {
        now_ms().saturating_add(self.clock_offset_ms.load(Ordering::SeqCst))
    }

    pub(super) fn advance_clock(&self, by: std::time::Duration) {
        self.clock_offset_ms.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Drops expired dynamic webhooks; returns the live ones.
    pub(super) fn live_hooks(&self) -> BTreeMap<i64, DynHook> {
        let now = self.clock_ms();
        let mut hooks = lock(&self.hooks);
        hooks.retain(|_, h| h.expires_ms > now);
        hooks.clone()
    }

    /// The live dynamic webhooks as `(id, expiration ms)`.
    pub(super) fn dynamic_webhooks(&self) -> Vec<(i64, i64)> {
        self.live_hooks()
            .into_iter()
            .map(|(id, h)| (id, h.expires_ms))
            .collect()
    }
}
