//! A fake Jira Cloud site over real HTTP (axum on `127.0.0.1:0`), for end-to-end tests and
//! the reference server's demo mode.
//!
//! It serves the REST v3 operations `ordonis-jira`'s client uses — `GET`/`PUT
//! /rest/api/3/issue/{id}`, `GET …/editmeta`, `PUT …/assignee`, `GET`/`POST …/transitions`,
//! `GET /rest/api/3/priority/search`, `POST /rest/api/3/workflows/preview` — over in-memory
//! issues with a three-status workflow (To Do → In Progress → Done, every move allowed) or one
//! set with [`FakeJira::set_workflow`] ([`FakeWorkflow`]: directed and global transitions,
//! required screen fields, failing conditions), `POST /rest/api/3/search/jql` with a JQL
//! subset, a lagging index and `reconcileIssues` ([`crate::fake_jira_search`],
//! [`FakeJira::set_index_lag`]), and the dynamic webhook API (`/rest/api/3/webhook`, 30-day
//! expiry on a fake clock, [`FakeJira::advance_clock`]), and sends signed admin webhooks
//! (`X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the body, plus
//! `X-Atlassian-Webhook-Identifier`) to a target URL.
//!
//! As strict as Jira Cloud where sync depends on it:
//! - descriptions are stored as ADF and served so on v3; a `PUT` whose description is not an
//!   ADF document is a 400; webhooks carry the issue in the REST v2 shape, with the
//!   description rendered as wiki markup ([`crate::jira_wiki`]); a wiki-markup description
//!   given to [`FakeJira::insert_issue`] or [`FakeJira::update_issue`] is stored as ADF;
//! - [`FakeJira::set_edit_screen`] limits the fields an edit may set: others make the whole
//!   `PUT` a 400 with `errors: {field: reason}`, as Jira answers;
//! - priorities are the site's five defaults, set by `id` (or `name`).
//!
//! Deliveries:
//!
//! - [`FakeJira::deliver`] sends a body as is (the real fixture payloads), after taking the
//!   issue it carries into the site;
//! - [`FakeJira::update_issue`] changes an issue as a person in Jira would and sends the
//!   `jira:issue_updated` webhook with its changelog;
//! - a change made through the REST API (a push) is echoed back as a webhook, as Jira does,
//!   unless [`FakeJira::set_echo`] turned that off.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let jira = ordonis_testkit::fake_jira::FakeJira::start().await?;
//! jira.set_webhook("http://127.0.0.1:8080/integrations/jira/…/webhook", "secret");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ordonis_core::signals::hmac_sha256_hex;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use crate::fake_jira_sync::DYNAMIC_WEBHOOK_LIFETIME_MS;
pub use crate::fake_jira_workflow::{FakeTransition, FakeWorkflow};

/// The workflow's statuses: (id, name, category key).
pub const STATUSES: [(&str, &str, &str); 3] = [
    ("10000", "To Do", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10001", "Done", "done"),
];

/// The "Won't Do" status of [`FakeJira::require_resolution`]'s workflow (done category).
pub const WONT_DO: (&str, &str, &str) = ("10100", "Won't Do", "done");

/// The resolutions a done transition offers in [`FakeJira::require_resolution`]'s workflow.
pub const RESOLUTIONS: [(&str, &str); 3] = [
    ("10002", "Won't Do"),
    ("10000", "Done"),
    ("10003", "Duplicate"),
];

/// The account the REST API acts as (the author of echoed webhooks).
pub const API_ACCOUNT: &str = "ordonis-api-user";

/// `sha256=<hex>` of a body under a secret, as Jira signs admin webhooks.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(secret, body))
}

#[derive(Clone, Debug)]
struct Hook {
    url: String,
    secret: String,
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
pub(crate) struct Inner {
    pub(crate) base_url: String,
    /// The search index, delivery switch, read faults and dynamic webhooks.
    pub(crate) sync: crate::fake_jira_sync::SyncState,
    pub(crate) issues: Mutex<BTreeMap<String, Value>>,
    hook: Mutex<Option<Hook>>,
    /// Transitions into the done category require a resolution, and a "Won't Do" status is
    /// offered first (see [`FakeJira::require_resolution`]).
    resolution_required: AtomicBool,
    /// The workflow set by [`FakeJira::set_workflow`]; `None`: the default one.
    workflow: Mutex<Option<FakeWorkflow>>,
    /// `POST /rest/api/3/workflows/preview` answers 403 ([`FakeJira::deny_workflow_read`]).
    pub(crate) workflow_read_denied: AtomicBool,
    /// Transition ids performed, in order.
    transitions_done: Mutex<Vec<String>>,
    /// Transitions wait while this says `false` once [`FakeJira::hold_transitions_after`]'s
    /// count of them went through.
    transition_gate: Mutex<Option<(usize, tokio::sync::watch::Receiver<bool>)>>,
    gate_open: tokio::sync::watch::Sender<bool>,
    /// Answers for the next writes (edit, assign, transition): status and headers.
    write_faults: Mutex<std::collections::VecDeque<WriteFault>>,
    /// Fields an edit may set; `None`: every field.
    edit_screen: Mutex<Option<Vec<String>>>,
    /// Webhooks kept instead of sent (see [`FakeJira::capture_webhooks`]).
    captured: Mutex<Option<Vec<Vec<u8>>>>,
    /// The secret deliveries through dynamic webhooks are signed with when no admin webhook
    /// is set ([`FakeJira::set_dynamic_webhook_secret`]).
    dynamic_secret: Mutex<Option<String>>,
    echo: AtomicBool,
    requests: Mutex<Vec<String>>,
    deliveries: AtomicU64,
    echoes: Arc<crate::in_flight::InFlight>,
    http: reqwest::Client,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fake Jira site. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeJira {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn now_jira() -> String {
    crate::fake_jira_search::jira_time(now_ms())
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn status_value(id: &str, name: &str, cat: &str) -> Value {
    json!({"id": id, "name": name, "statusCategory": {"key": cat}})
}

fn text_of(v: &Value) -> Option<String> {
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

impl FakeJira {
    /// Starts a site on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let inner = Arc::new(Inner {
            base_url: format!("http://{addr}"),
            sync: crate::fake_jira_sync::SyncState::default(),
            issues: Mutex::new(BTreeMap::new()),
            hook: Mutex::new(None),
            edit_screen: Mutex::new(None),
            write_faults: Mutex::default(),
            resolution_required: AtomicBool::new(false),
            workflow: Mutex::new(None),
            workflow_read_denied: AtomicBool::new(false),
            transitions_done: Mutex::default(),
            transition_gate: Mutex::new(None),
            gate_open: tokio::sync::watch::Sender::new(true),
            captured: Mutex::new(None),
            dynamic_secret: Mutex::new(None),
            echo: AtomicBool::new(true),
            requests: Mutex::new(Vec::new()),
            deliveries: AtomicU64::new(0),
            echoes: Arc::default(),
            http,
        });
        let app = Router::new()
            .route("/rest/api/3/issue/{id}", get(get_issue).put(edit_issue))
            .route("/rest/api/3/issue/{id}/assignee", put(assign))
            .route("/rest/api/3/issue/{id}/editmeta", get(editmeta))
            .route("/rest/api/3/priority/search", get(priority_search))
            .route("/rest/api/3/project/{key}/statuses", get(project_statuses))
            .route(
                "/rest/api/3/workflows/preview",
                post(crate::fake_jira_workflow::preview),
            )
            .route(
                "/rest/api/3/issue/{id}/transitions",
                get(transitions).post(do_transition),
            )
            .route(
                "/rest/api/3/search/jql",
                post(crate::fake_jira_sync::search),
            )
            .route(
                "/rest/api/3/webhook",
                post(crate::fake_jira_sync::register)
                    .get(crate::fake_jira_sync::list)
                    .delete(crate::fake_jira_sync::delete),
            )
            .route(
                "/rest/api/3/webhook/refresh",
                put(crate::fake_jira_sync::refresh),
            )
            .route("/browse/{key}", get(browse))
            .with_state(inner.clone());
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(Self { inner, addr, stop })
    }

    /// The site's base URL (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where webhooks go, and the secret they are signed with.
    pub fn set_webhook(&self, url: impl Into<String>, secret: impl Into<String>) {
        *lock(&self.inner.hook) = Some(Hook {
            url: url.into(),
            secret: secret.into(),
        });
    }

    /// Limits the fields an edit may set (Jira field ids: `summary`, `description`,
    /// `priority`, `duedate`); any other field in a `PUT` makes it a 400 naming that field.
    pub fn set_edit_screen(&self, fields: &[&str]) {
        *lock(&self.inner.edit_screen) = Some(fields.iter().map(|f| (*f).to_owned()).collect());
    }

    /// Makes the workflow like Jira's classic one: a transition into the done category has a
    /// screen requiring `resolution` (allowed: Won't Do, Done, Duplicate; a `POST` without one
    /// is a 400), and the first transition offered is to a "Won't Do" status (done category).
    pub fn require_resolution(&self) {
        self.inner.resolution_required.store(true, Ordering::SeqCst);
    }

    /// Replaces the workflow (every issue type uses it). Issues keep their status.
    pub fn set_workflow(&self, workflow: FakeWorkflow) {
        *lock(&self.inner.workflow) = Some(workflow);
    }

    /// Makes `POST /rest/api/3/workflows/preview` answer 403, as for an account with
    /// neither *View (read-only) workflow* nor *Administer projects* (or allows it again).
    pub fn deny_workflow_read(&self, denied: bool) {
        self.inner
            .workflow_read_denied
            .store(denied, Ordering::SeqCst);
    }

    /// The ids of the transitions performed so far, in order.
    pub fn transitions_done(&self) -> Vec<String> {
        lock(&self.inner.transitions_done).clone()
    }

    /// Lets `n` more transitions through, then holds each later one (before it moves the
    /// issue) until [`FakeJira::release_transitions`]: a push stays in flight between hops.
    pub fn hold_transitions_after(&self, n: usize) {
        self.inner.gate_open.send_replace(false);
        let done = lock(&self.inner.transitions_done).len();
        *lock(&self.inner.transition_gate) = Some((done + n, self.inner.gate_open.subscribe()));
    }

    /// Lets held transitions through.
    pub fn release_transitions(&self) {
        self.inner.gate_open.send_replace(true);
    }

    /// Makes the next write (edit, assignment or transition) fail with `status` and these
    /// headers, as Jira answers its limits: `413` (an issue over a data limit) or `429` with
    /// `RateLimit-Reason: jira-per-issue-on-write` and `Retry-After`.
    pub fn fail_next_write(&self, status: u16, headers: &[(&str, &str)]) {
        lock(&self.inner.write_faults).push_back((
            status,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ));
    }

    /// Keeps webhooks in memory instead of sending them, for tests that hand them to an
    /// engine themselves ([`FakeJira::take_webhooks`]).
    pub fn capture_webhooks(&self) {
        let mut c = lock(&self.inner.captured);
        if c.is_none() {
            *c = Some(Vec::new());
        }
    }

    /// The webhook bodies captured since the last call, oldest first (unsigned; sign them
    /// with [`sign`]).
    pub fn take_webhooks(&self) -> Vec<Vec<u8>> {
        lock(&self.inner.captured)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether changes made through the REST API are echoed as webhooks (default: yes).
    pub fn set_echo(&self, on: bool) {
        self.inner.echo.store(on, Ordering::SeqCst);
    }

    /// Makes the search index lag: a search sees each issue as it was `lag` ago (an issue
    /// created within the lag is not found), except the ids a request names in
    /// `reconcileIssues`, which are read fresh. Default: no lag.
    pub fn set_index_lag(&self, lag: std::time::Duration) {
        self.inner.sync.set_lag(lag);
    }

    /// Switches webhook deliveries off (or back on): edits still happen, and every delivery
    /// that would have been sent (admin, dynamic, captured, echoes) is dropped and counted
    /// ([`FakeJira::dropped_deliveries`]). Default: on.
    pub fn set_webhooks_enabled(&self, on: bool) {
        self.inner.sync.set_webhooks_enabled(on);
    }

    /// How many deliveries were dropped while webhooks were switched off.
    pub fn dropped_deliveries(&self) -> u64 {
        self.inner.sync.dropped()
    }

    /// Makes the next `n` reads (`GET /rest/api/3/issue/{id}` and `POST …/search/jql`) fail
    /// with `status` and these headers, as a storm of `429` with `Retry-After` would.
    pub fn fail_next_reads(&self, n: usize, status: u16, headers: &[(&str, &str)]) {
        self.inner.sync.fail_reads(
            n,
            status,
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }

    /// Moves the fake clock that dynamic webhooks expire by (not issue timestamps) forward.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.inner.sync.advance_clock(by);
    }

    /// The live dynamic webhooks, `(id, expirationDate in epoch ms)`.
    pub fn dynamic_webhooks(&self) -> Vec<(i64, i64)> {
        self.inner.sync.dynamic_webhooks()
    }

    /// The secret deliveries through dynamic webhooks are signed with (`X-Hub-Signature`)
    /// when no admin webhook is set.
    pub fn set_dynamic_webhook_secret(&self, secret: impl Into<String>) {
        *lock(&self.inner.dynamic_secret) = Some(secret.into());
    }

    /// Changes an issue's fields (Jira's shape, as [`FakeJira::update_issue`]) without any
    /// webhook; `updated` moves to now. Returns false when there is no such issue.
    pub fn edit_silently(&self, id_or_key: &str, fields: &Value) -> bool {
        self.inner.apply(id_or_key, fields).is_some()
    }

    /// Deletes an issue as a person in Jira would, and sends the `jira:issue_deleted`
    /// webhook (the issue's last state in the REST v2 shape). Afterwards a fetch is a 404 and
    /// the search no longer finds it. Returns the receiver's status (`Ok(0)` when deliveries
    /// are off).
    pub async fn delete_issue(
        &self,
        id_or_key: &str,
        user_account_id: &str,
    ) -> Result<u16, String> {
        let mut body: Value = self
            .inner
            .webhook_body(id_or_key, Vec::new(), user_account_id)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        let (id, _) = self
            .inner
            .find(id_or_key)
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        lock(&self.inner.issues).remove(&id);
        self.inner.sync.forget(&id);
        if let Some(o) = body.as_object_mut() {
            o.remove("changelog");
            o.insert(
                "webhookEvent".into(),
                Value::String("jira:issue_deleted".to_owned()),
            );
            o.insert(
                "issue_event_type_name".into(),
                Value::String("issue_deleted".to_owned()),
            );
        }
        self.inner.send(body.to_string().into_bytes()).await
    }

    /// Puts an issue (Jira's JSON: `{id, key, fields: {…}}`) into the site.
    pub fn insert_issue(&self, issue: Value) {
        self.inner.put_issue(issue);
    }

    /// An issue by id or key.
    pub fn issue(&self, id_or_key: &str) -> Option<Value> {
        self.inner.find(id_or_key).map(|(_, v)| v)
    }

    /// The REST requests served so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.inner.requests).clone()
    }

    /// Waits until every webhook echo of a REST change made so far has been sent (or
    /// captured), at most `within`; false on time-out. Echoes are sent in the background
    /// after the change is answered, as Jira does.
    pub async fn echoes_sent(&self, within: std::time::Duration) -> bool {
        self.inner.echoes.wait_idle(within).await
    }

    /// How many webhooks were sent.
    pub fn deliveries(&self) -> u64 {
        self.inner.deliveries.load(Ordering::SeqCst)
    }

    /// Sends a webhook body as is (e.g. a real fixture), signed, after taking the issue it
    /// carries into the site. Returns the HTTP status of the receiver's answer.
    pub async fn deliver(&self, body: &[u8]) -> Result<u16, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if let Some(issue) = v.get("issue").cloned() {
            self.inner.put_issue(issue);
        }
        self.inner.send(body.to_vec()).await
    }

    /// Sends the `jira:issue_created` webhook for an issue already in the site (REST v2 shape,
    /// the description as wiki markup, a changelog of the initial values, as Jira sends it).
    pub async fn announce_created(
        &self,
        id_or_key: &str,
        user_account_id: &str,
    ) -> Result<u16, String> {
        let (_, issue) = self
            .inner
            .find(id_or_key)
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        let items: Vec<Value> = issue
            .get("fields")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                !v.is_null()
                    && ["summary", "description", "status", "priority", "assignee"]
                        .contains(&k.as_str())
            })
            .map(|(k, v)| {
                let to = if k == "description" {
                    crate::jira_wiki::adf_to_wiki(v).as_str().map(str::to_owned)
                } else {
                    text_of(v)
                };
                json!({"field": k, "fieldtype": "jira", "fieldId": k, "from": Value::Null,
                       "fromString": Value::Null, "to": Value::Null, "toString": to})
            })
            .collect();
        let mut body: Value = self
            .inner
            .webhook_body(id_or_key, items, user_account_id)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        body["webhookEvent"] = Value::String("jira:issue_created".to_owned());
        body["issue_event_type_name"] = Value::String("issue_created".to_owned());
        self.inner.send(body.to_string().into_bytes()).await
    }

    /// Changes an issue as a person in Jira: `fields` in Jira's shape (`summary`, `status:
    /// {name}`, `assignee: {accountId}`, `priority: {name}`, `duedate`, `description`), then
    /// sends the `jira:issue_updated` webhook with its changelog. Returns the receiver's status.
    pub async fn update_issue(
        &self,
        id_or_key: &str,
        fields: &Value,
        user_account_id: &str,
    ) -> Result<u16, String> {
        let items = self
            .inner
            .apply(id_or_key, fields)
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        let body = self
            .inner
            .webhook_body(id_or_key, items, user_account_id)
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        self.inner.send(body).await
    }
}

impl Inner {
    /// The workflow every issue follows: the one set, or the default.
    pub(crate) fn workflow(&self) -> FakeWorkflow {
        lock(&self.workflow).clone().unwrap_or_else(|| {
            FakeWorkflow::default_for(self.resolution_required.load(Ordering::SeqCst))
        })
    }

    fn find(&self, id_or_key: &str) -> Option<(String, Value)> {
        let issues = lock(&self.issues);
        if let Some(v) = issues.get(id_or_key) {
            return Some((id_or_key.to_owned(), v.clone()));
        }
        issues
            .iter()
            .find(|(_, v)| v.get("key").and_then(Value::as_str) == Some(id_or_key))
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    fn put_issue(&self, mut issue: Value) {
        let id = match issue.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return,
        };
        // Jira stores ADF; a v2 payload's wiki-markup description is stored converted.
        if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut)
            && let Some(Value::String(wiki)) = f.get("description")
        {
            let adf = crate::jira_wiki::wiki_to_adf(wiki);
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
    fn apply(&self, id_or_key: &str, change: &Value) -> Option<Vec<Value>> {
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
                    Value::String(wiki) => crate::jira_wiki::wiki_to_adf(wiki),
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
                    crate::jira_wiki::adf_to_wiki(&old)
                        .as_str()
                        .map(str::to_owned),
                    crate::jira_wiki::adf_to_wiki(&new)
                        .as_str()
                        .map(str::to_owned),
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

    fn webhook_body(&self, id_or_key: &str, items: Vec<Value>, account: &str) -> Option<Vec<u8>> {
        let (id, mut issue) = self.find(id_or_key)?;
        // Webhooks carry the REST v2 shape: the description as wiki markup.
        if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut)
            && let Some(d) = f.get("description")
        {
            let wiki = crate::jira_wiki::adf_to_wiki(d);
            f.insert("description".into(), wiki);
        }
        if let Some(o) = issue.as_object_mut() {
            o.insert(
                "self".into(),
                Value::String(format!("{}/rest/api/2/issue/{id}", self.base_url)),
            );
        }
        let body = json!({
            "timestamp": now_ms(),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "user": {"accountId": account, "displayName": account},
            "issue": issue,
            "changelog": {"id": uuid::Uuid::now_v7().simple().to_string(), "items": items},
        });
        Some(body.to_string().into_bytes())
    }

    /// Sends a webhook to the admin webhook (set_webhook) and, when a live dynamic webhook
    /// asks for the event and its `jqlFilter` matches the issue, to the dynamic URL. Returns
    /// the first receiver's status; `Ok(0)` when deliveries are switched off (the delivery is
    /// counted as dropped).
    async fn send(&self, body: Vec<u8>) -> Result<u16, String> {
        if !self.sync.delivery_allowed() {
            return Ok(0);
        }
        if let Some(c) = lock(&self.captured).as_mut() {
            self.deliveries.fetch_add(1, Ordering::SeqCst);
            c.push(body);
            return Ok(200);
        }
        let admin = lock(&self.hook).clone();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let event = parsed["webhookEvent"].as_str().unwrap_or_default();
        let dynamic = self
            .sync
            .dynamic_target(event, &parsed["issue"])
            .filter(|u| admin.as_ref().is_none_or(|a| &a.url != u));
        // Dynamic webhooks are signed like admin ones here (HMAC with the admin webhook's
        // secret, else the dynamic secret): the fake does not mint Connect JWTs.
        let secret = admin
            .as_ref()
            .map(|h| h.secret.clone())
            .or_else(|| lock(&self.dynamic_secret).clone())
            .unwrap_or_default();
        let targets: Vec<String> = admin.map(|h| h.url).into_iter().chain(dynamic).collect();
        if targets.is_empty() {
            return Err("no webhook target set".to_owned());
        }
        let mut first = None;
        for url in targets {
            self.deliveries.fetch_add(1, Ordering::SeqCst);
            let resp = self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature", sign(&secret, &body))
                .header(
                    "x-atlassian-webhook-identifier",
                    uuid::Uuid::now_v7().to_string(),
                )
                .header("x-atlassian-webhook-flow", "Primary")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            first.get_or_insert(resp.status().as_u16());
        }
        Ok(first.unwrap_or(0))
    }

    /// After a REST change: echo it as a webhook, as Jira does (in the background).
    fn echo(self: &Arc<Self>, id: &str, items: Vec<Value>) {
        if items.is_empty() || !self.echo.load(Ordering::SeqCst) {
            return;
        }
        let Some(body) = self.webhook_body(id, items, API_ACCOUNT) else {
            return;
        };
        let me = self.clone();
        self.echoes.spawn(async move {
            if let Err(e) = me.send(body).await {
                echo_failed(&e);
            }
        });
    }

    pub(crate) fn log(&self, line: String) {
        lock(&self.requests).push(line);
    }
}

/// The testkit has no logger; a lost echo is worth a line on stderr in a test run.
fn echo_failed(e: &str) {
    eprintln!("fake jira: webhook echo failed: {e}");
}

pub(crate) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Basic ") || v.starts_with("Bearer "))
}

pub(crate) fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"errorMessages": [msg], "errors": {}}))).into_response()
}

async fn get_issue(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = s.sync.read_fault() {
        return fault;
    }
    match s.find(&id) {
        Some((_, mut v)) => {
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "self".into(),
                    Value::String(format!("{}/rest/api/3/issue/{id}", s.base_url)),
                );
            }
            Json(v).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

async fn edit_issue(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("PUT /rest/api/3/issue/{id}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some(fields) = body.get("fields").filter(|f| f.is_object()) else {
        return error(StatusCode::BAD_REQUEST, "fields missing");
    };
    if fields.get("status").is_some() || fields.get("assignee").is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            "status and assignee cannot be set by an edit",
        );
    }
    // Jira refuses the whole edit, naming each field it cannot set.
    let mut errors = serde_json::Map::new();
    let screen = lock(&s.edit_screen).clone();
    for (name, value) in fields.as_object().into_iter().flatten() {
        if let Some(screen) = &screen
            && !screen.iter().any(|f| f == name)
        {
            errors.insert(
                name.clone(),
                Value::String(format!(
                    "Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
                )),
            );
            continue;
        }
        match name.as_str() {
            "description" if !(value.is_null() || is_adf_doc(value)) => {
                errors.insert(
                    name.clone(),
                    Value::String(
                        "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                            .to_owned(),
                    ),
                );
            }
            "priority" if !value.is_null() => {
                let by_id = value.get("id").and_then(Value::as_str);
                let by_name = value.get("name").and_then(Value::as_str);
                if !PRIORITIES.iter().any(|(id, n)| {
                    Some(*id) == by_id || by_name.is_some_and(|b| b.eq_ignore_ascii_case(n))
                }) {
                    errors.insert(
                        name.clone(),
                        Value::String("Specify a valid 'id' or 'name' for Priority".to_owned()),
                    );
                }
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessages": [], "errors": errors})),
        )
            .into_response();
    }
    match s.apply(&id, fields) {
        Some(items) => {
            s.echo(&id, items);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

/// The next injected write failure, if any.
fn write_fault(s: &Inner) -> Option<Response> {
    let (status, headers) = lock(&s.write_faults).pop_front()?;
    Some(fault_response(status, headers))
}

/// An injected failure: `status` with Jira's error body and these headers.
pub(crate) fn fault_response(status: u16, headers: Vec<(String, String)>) -> Response {
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

fn is_adf_doc(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_u64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
}

async fn editmeta(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/editmeta"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if s.find(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    }
    let screen = lock(&s.edit_screen).clone().unwrap_or_else(|| {
        ["summary", "description", "priority", "duedate"]
            .iter()
            .map(|f| (*f).to_owned())
            .collect()
    });
    let fields: serde_json::Map<String, Value> = screen
        .into_iter()
        .map(|f| (f.clone(), json!({"required": f == "summary", "key": f})))
        .collect();
    Json(json!({ "fields": fields })).into_response()
}

async fn project_statuses(
    State(s): State<Arc<Inner>>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/project/{key}/statuses"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let statuses: Vec<Value> = s
        .workflow()
        .statuses
        .iter()
        .map(|(id, name, cat)| status_value(id, name, cat))
        .collect();
    // One workflow for every issue type the site's issues use.
    let mut types: Vec<String> = lock(&s.issues)
        .values()
        .filter_map(|i| i["fields"]["issuetype"]["id"].as_str().map(str::to_owned))
        .collect();
    types.sort();
    types.dedup();
    let list: Vec<Value> = types
        .into_iter()
        .map(|t| json!({"id": t, "name": "Task", "subtask": false, "statuses": statuses}))
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn priority_search(State(s): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    s.log("GET /rest/api/3/priority/search".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let values: Vec<Value> = PRIORITIES
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    Json(json!({"startAt": 0, "maxResults": 50, "total": values.len(), "isLast": true, "values": values}))
        .into_response()
}

async fn assign(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("PUT /rest/api/3/issue/{id}/assignee"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let change =
        json!({"assignee": {"accountId": body.get("accountId").cloned().unwrap_or(Value::Null)}});
    match s.apply(&id, &change) {
        Some(items) => {
            s.echo(&id, items);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

async fn transitions(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/transitions"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((_, issue)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let current = issue
        .get("fields")
        .and_then(|f| f.get("status"))
        .and_then(|st| st.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Json(s.workflow().transitions_json(&current)).into_response()
}

async fn do_transition(
    State(s): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("POST /rest/api/3/issue/{id}/transitions"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some((_, issue)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let current = issue["fields"]["status"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let change = match s.workflow().perform(&current, &body) {
        Ok(c) => c,
        Err((code, body)) => return (code, Json(body)).into_response(),
    };
    let gate = lock(&s.transition_gate).clone();
    if let Some((after, mut open)) = gate
        && lock(&s.transitions_done).len() >= after
    {
        // Only a dropped sender ends the wait early; the fake owns it.
        let _ = open.wait_for(|o| *o).await;
    }
    if let Some(t) = body["transition"]["id"].as_str() {
        lock(&s.transitions_done).push(t.to_owned());
    }
    match s.apply(&id, &change) {
        Some(items) => {
            s.echo(&id, items);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

/// `GET /browse/{key}`: the link Jira hands out for an issue (`…/browse/KAN-22`), so that the
/// links a demo or a test shows lead somewhere. Plain text: the key, summary and status.
async fn browse(State(s): State<Arc<Inner>>, Path(key): Path<String>) -> Response {
    match s.find(&key) {
        Some((_, v)) => {
            let f = &v["fields"];
            let text = format!(
                "{} · {}\nStatus: {}\n\n(The fake Jira of Ordonis's demo and tests: this stands \
                 in for the issue's page on a Jira site.)\n",
                v["key"].as_str().unwrap_or(&key),
                f["summary"].as_str().unwrap_or(""),
                f["status"]["name"].as_str().unwrap_or(""),
            );
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                text,
            )
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}
