//! [`FakeJira`]: the handle a test (or the demo) holds on a running fake site, and the
//! site's router.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{delete, get, post, put};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::site::{FakeIssueType, FakeProject, FakeUser, Hook, Site, SyncState, lock};
use super::workflow::FakeWorkflow;
use super::{comments, create, issues, limits, links, search, transitions, webhooks};

/// A comment body as a person types it: one ADF paragraph of plain text.
fn plain_adf(text: &str) -> Value {
    json!({"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": text}]}]})
}

/// A running fake Jira site. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeJira {
    inner: Arc<Site>,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        self.stop.cancel();
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
        let inner = Arc::new(Site {
            base_url: format!("http://{addr}"),
            sync: SyncState::default(),
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
            app: Mutex::new(None),
            limits: super::limits::Limits::default(),
            echo: AtomicBool::new(true),
            comments: Mutex::new(BTreeMap::new()),
            next_comment: AtomicU64::new(10_000),
            lose_comment_answers: AtomicU64::new(0),
            remote_links: Mutex::new(BTreeMap::new()),
            next_link: AtomicU64::new(10_000),
            lose_link_answers: AtomicU64::new(0),
            projects: Mutex::new(BTreeMap::new()),
            issue_properties: Mutex::new(BTreeMap::new()),
            next_issue: AtomicU64::new(20_001),
            lose_create_answers: AtomicU64::new(0),
            users: Mutex::new(BTreeMap::new()),
            requests: Mutex::new(Vec::new()),
            deliveries: AtomicU64::new(0),
            echoes: Arc::default(),
            http,
        });
        let app = Router::new()
            .route("/rest/api/3/issue", post(create::create_issue))
            .route(
                "/rest/api/3/issue/createmeta/{project}/issuetypes",
                get(create::meta_issue_types),
            )
            .route(
                "/rest/api/3/issue/createmeta/{project}/issuetypes/{type_id}",
                get(create::meta_fields),
            )
            .route(
                "/rest/api/3/issue/{id}/properties/{key}",
                get(create::get_property),
            )
            .route("/rest/api/3/user", get(create::get_user))
            .route(
                "/rest/api/3/issue/{id}",
                get(issues::get_issue).put(issues::edit_issue),
            )
            .route("/rest/api/3/issue/{id}/assignee", put(issues::assign))
            .route(
                "/rest/api/3/issue/{id}/comment",
                get(comments::list).post(comments::add),
            )
            .route(
                "/rest/api/3/issue/{id}/comment/{comment}",
                get(comments::get_one)
                    .put(comments::update)
                    .delete(comments::delete),
            )
            .route(
                "/rest/api/3/issue/{id}/remotelink",
                get(links::list).post(links::create_or_update),
            )
            .route(
                "/rest/api/3/issue/{id}/remotelink/{link}",
                delete(links::delete),
            )
            .route("/rest/api/3/issue/{id}/editmeta", get(issues::editmeta))
            .route("/rest/api/3/priority/search", get(issues::priority_search))
            .route(
                "/rest/api/3/project/{key}/statuses",
                get(transitions::project_statuses),
            )
            .route("/rest/api/3/workflows/preview", post(transitions::preview))
            .route(
                "/rest/api/3/issue/{id}/transitions",
                get(transitions::transitions).post(transitions::do_transition),
            )
            .route("/rest/api/3/search/jql", post(search::search))
            .route(
                "/rest/api/3/webhook",
                post(webhooks::register)
                    .get(webhooks::list)
                    .delete(webhooks::delete),
            )
            .route("/rest/api/3/webhook/refresh", put(webhooks::refresh))
            .route("/browse/{key}", get(issues::browse))
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                limits::enforce,
            ))
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

    /// The comments of an issue (by id), oldest first, as stored (with their properties).
    pub fn comments(&self, issue_id: &str) -> Vec<Value> {
        lock(&self.inner.comments)
            .get(issue_id)
            .cloned()
            .unwrap_or_default()
    }

    /// A person (`account_id`) comments on an issue with plain `text`; the comment's id.
    /// No webhook is sent (as if Jira's `comment_created` delivery were lost); see
    /// [`FakeJira::comment_as`] for the comment with its webhook.
    pub fn add_comment_as(
        &self,
        issue_id: &str,
        account_id: &str,
        name: &str,
        text: &str,
    ) -> String {
        let c = self.person_comment(issue_id, account_id, name, text);
        self.inner.touch(issue_id);
        c["id"].as_str().unwrap_or_default().to_owned()
    }

    /// Stores a person's comment; the comment as stored.
    fn person_comment(&self, issue_id: &str, account_id: &str, name: &str, text: &str) -> Value {
        let cid = self
            .inner
            .next_comment
            .fetch_add(1, Ordering::SeqCst)
            .to_string();
        let now = super::site::jira_time(super::site::now_ms());
        let author = json!({"accountId": account_id, "displayName": name});
        let comment = json!({
            "id": cid, "author": author, "updateAuthor": author, "body": plain_adf(text),
            "created": now, "updated": now, "jsdPublic": true, "properties": [],
        });
        lock(&self.inner.comments)
            .entry(issue_id.to_owned())
            .or_default()
            .push(comment.clone());
        comment
    }

    /// A person (`account_id`, shown as `name`) comments on an issue (by id) with plain
    /// `text`, and Jira's `comment_created` webhook is delivered before this returns (the
    /// body is described in [`crate::jira`]: a wiki-markup body, a reduced issue, no `user`).
    /// Returns the comment's id. A delivery that fails (no webhook set, deliveries switched
    /// off) is not an error here: the comment stays.
    pub async fn comment_as(
        &self,
        issue_id: &str,
        account_id: &str,
        name: &str,
        text: &str,
    ) -> String {
        let c = self.person_comment(issue_id, account_id, name, text);
        self.deliver_comment(issue_id, &c, "comment_created").await;
        c["id"].as_str().unwrap_or_default().to_owned()
    }

    /// A person (`account_id`) edits a comment (any comment: a Jira admin may) to plain
    /// `text`: the body becomes that ADF paragraph, `updated` moves later than it was and
    /// `updateAuthor` is the person; then the `comment_updated` webhook is delivered before
    /// this returns. `false` when the issue has no such comment.
    pub async fn edit_comment_as(
        &self,
        issue_id: &str,
        comment_id: &str,
        account_id: &str,
        text: &str,
    ) -> bool {
        let edited = {
            let mut all = lock(&self.inner.comments);
            // The person's name as Jira knows it: from a comment of theirs, else the id.
            let name = all
                .values()
                .flatten()
                .flat_map(|c| [&c["author"], &c["updateAuthor"]])
                .find(|a| a["accountId"] == account_id)
                .and_then(|a| a["displayName"].as_str())
                .unwrap_or(account_id)
                .to_owned();
            let Some(c) = all
                .get_mut(issue_id)
                .and_then(|l| l.iter_mut().find(|c| c["id"] == comment_id))
            else {
                return false;
            };
            let before = c["updated"]
                .as_str()
                .and_then(super::site::parse_jira_time)
                .unwrap_or(0);
            c["body"] = plain_adf(text);
            c["updated"] = Value::String(super::site::jira_time(
                super::site::now_ms().max(before + 1),
            ));
            c["updateAuthor"] = json!({"accountId": account_id, "displayName": name});
            c.clone()
        };
        self.deliver_comment(issue_id, &edited, "comment_updated")
            .await;
        true
    }

    /// A person (`account_id`) deletes a comment (any comment: a Jira admin may); then the
    /// `comment_deleted` webhook (the comment as it last was) is delivered before this
    /// returns. Jira's comment webhooks name no actor, so `account_id` is not in the body.
    /// `false` when the issue has no such comment.
    pub async fn delete_comment_as(
        &self,
        issue_id: &str,
        comment_id: &str,
        account_id: &str,
    ) -> bool {
        // Who deleted it: Jira's comment_deleted body does not say (no `user` key).
        let _ = account_id;
        let gone = {
            let mut all = lock(&self.inner.comments);
            let Some(list) = all.get_mut(issue_id) else {
                return false;
            };
            let Some(i) = list.iter().position(|c| c["id"] == comment_id) else {
                return false;
            };
            list.remove(i)
        };
        self.deliver_comment(issue_id, &gone, "comment_deleted")
            .await;
        true
    }

    /// Sends a person's comment webhook and waits for it (not an echo: the echo switch does
    /// not apply; the delivery switch does, in `send`).
    async fn deliver_comment(&self, issue_id: &str, comment: &Value, event: &str) {
        self.inner.touch(issue_id);
        let Some(body) = self.inner.comment_body(issue_id, comment, event) else {
            return;
        };
        if let Err(e) = self.inner.send(body).await {
            super::deliver::delivery_failed(&e);
        }
    }

    /// The next `n` comment posts make their comment, then answer `504` as if the answer
    /// were lost on the way back (a client must find the comment before posting again).
    pub fn lose_next_comment_answer(&self, n: u64) {
        self.inner.lose_comment_answers.store(n, Ordering::SeqCst);
    }

    /// The remote links of an issue (by id or key), oldest first, as stored (`id`,
    /// `globalId`, `application`, `relationship`, `object`); empty for an unknown issue.
    pub fn remote_links(&self, issue_id: &str) -> Vec<Value> {
        let Some((issue, _)) = self.inner.find(issue_id) else {
            return Vec::new();
        };
        lock(&self.inner.remote_links)
            .get(&issue)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds a remote link to an issue (by id or key) as another app or a person would:
    /// `link` is a `RemoteIssueLinkRequest` (`{globalId?, application?, relationship?,
    /// object: {url, title, …}}`), upserted by its `globalId` as a `POST` is. Returns the
    /// link's id; `None` for an unknown issue.
    pub fn add_remote_link(&self, issue_id: &str, link: &Value) -> Option<u64> {
        let (issue, _) = self.inner.find(issue_id)?;
        let (stored, _) = self.inner.upsert_link(&issue, link);
        stored.get("id").and_then(Value::as_u64)
    }

    /// The next `n` remote link posts make (or update) their link, then answer `504` as if
    /// the answer were lost on the way back (posting again with the same `globalId` updates
    /// the one link).
    pub fn lose_next_link_answer(&self, n: u64) {
        self.inner.lose_link_answers.store(n, Ordering::SeqCst);
    }

    /// Adds a project issues can be created in (`key` such as `KAN`, numeric `id`), with the
    /// issue types Task (`10001`), Bug (`10004`) and Sub-task (`10003`, needs a parent). A
    /// project of that key is replaced.
    pub fn add_project(&self, key: &str, id: &str) {
        lock(&self.inner.projects).insert(
            key.to_owned(),
            FakeProject {
                id: id.to_owned(),
                key: key.to_owned(),
                name: format!("{key} project"),
                issue_types: create::default_issue_types(),
                create_denied: false,
            },
        );
    }

    /// Takes away (or gives back) the account's *Create issues* permission in a project: a
    /// create there is a 403 with Jira's error body. The create metadata is still shown.
    pub fn deny_create(&self, project_key: &str, denied: bool) {
        if let Some(p) = lock(&self.inner.projects).get_mut(project_key) {
            p.create_denied = denied;
        }
    }

    /// Makes the create screen of `issue_type` (by name) in a project require a field
    /// (`customfield_10050`, shown as `name`) with no default: a create without it is a 400
    /// naming it (`"Team is required."`).
    pub fn require_create_field(
        &self,
        project_key: &str,
        issue_type: &str,
        field_id: &str,
        name: &str,
    ) {
        if let Some(p) = lock(&self.inner.projects).get_mut(project_key) {
            for t in p
                .issue_types
                .iter_mut()
                .filter(|t: &&mut FakeIssueType| t.name.eq_ignore_ascii_case(issue_type))
            {
                t.required.push((field_id.to_owned(), name.to_owned()));
            }
        }
    }

    /// The next `n` creates make their issue (and send its webhook), then answer `504` as
    /// if the answer were lost on the way back.
    pub fn lose_next_create_answer(&self, n: u64) {
        self.inner.lose_create_answers.store(n, Ordering::SeqCst);
    }

    /// An issue property's value (issue by id or key).
    pub fn issue_property(&self, id_or_key: &str, key: &str) -> Option<Value> {
        let (id, _) = self.inner.find(id_or_key)?;
        lock(&self.inner.issue_properties)
            .get(&id)
            .and_then(|p| p.get(key))
            .cloned()
    }

    /// The keys of the issues whose property `key` is `value`, by id.
    pub fn issues_with_property(&self, key: &str, value: &Value) -> Vec<String> {
        let ids: Vec<String> = lock(&self.inner.issue_properties)
            .iter()
            .filter(|(_, p)| p.get(key) == Some(value))
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.inner.find(id))
            .filter_map(|(_, v)| v["key"].as_str().map(str::to_owned))
            .collect()
    }

    /// Adds a user: `email` `None` is an address hidden by the user's privacy settings
    /// (`emailAddress` absent from the API and webhooks); `app` makes it an app's account
    /// (`accountType: "app"`), else `atlassian`.
    pub fn add_user(&self, account_id: &str, name: &str, email: Option<&str>, app: bool) {
        lock(&self.inner.users).insert(
            account_id.to_owned(),
            FakeUser {
                name: name.to_owned(),
                email: email.map(str::to_owned),
                app,
            },
        );
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

    /// Makes the next write (edit, assignment, transition, or a remote link's post or
    /// deletion, a dynamic webhook's deletion) fail with `status` and these headers, as Jira
    /// answers its limits: `413` (an issue over a data limit) or `429` with
    /// `RateLimit-Reason: jira-per-issue-on-write` and `Retry-After`; or a refusal, such as
    /// the `403` of an account without the *Link issues* permission.
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
    /// with [`sign`](super::sign)).
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

    /// The Connect app whose dynamic webhooks (registered through `POST
    /// /rest/api/3/webhook`) are delivered with `Authorization: JWT <token>`, as real apps
    /// receive them: HS256 under the app's shared secret, with `iss` (the site's client key),
    /// `iat`, `exp` (three minutes on) and `qsh`, the hash of `POST&<path>&<sorted query>`
    /// of the URL it posts to (the app's base URL taken as its origin). Admin webhooks
    /// ([`FakeJira::set_webhook`]) keep `X-Hub-Signature`. Without an app, dynamic
    /// deliveries go out unsigned and a receiver refuses them.
    pub fn set_app_secret(&self, issuer: impl Into<String>, shared_secret: impl Into<String>) {
        *lock(&self.inner.app) = Some((issuer.into(), shared_secret.into()));
    }

    /// Turns on Jira's points quota (see the `limits` module): `points` per `window`,
    /// each answer costing 1 point plus 1 per object a read returns, answered with the
    /// `Beta-RateLimit*` headers, and `429 jira-quota-tenant-based` with `Beta-Retry-After`
    /// once spent until the window resets. Off by default.
    pub fn set_quota(&self, points: u64, window: std::time::Duration) {
        self.inner.limits.set_quota(points, window);
    }

    /// Turns the quota off again.
    pub fn clear_quota(&self) {
        self.inner.limits.clear_quota();
    }

    /// Spends `points` of the current window, as other apps' calls on the tenant would.
    pub fn spend_quota(&self, points: u64) {
        self.inner.limits.spend(points);
    }

    /// Jira's burst limit on one endpoint: every `method` call to a path matching `pattern`
    /// (`/rest/api/3/search/jql`, `/rest/api/3/issue/{id}`: a `{…}` segment matches any
    /// one) is a `429` with `RateLimit-Reason: jira-burst-based` and `Retry-After`, until
    /// [`FakeJira::clear_burst_limit`]. Other endpoints and methods answer as usual.
    pub fn set_burst_limit(&self, method: &str, pattern: &str, retry_after: std::time::Duration) {
        self.inner.limits.set_burst(method, pattern, retry_after);
    }

    /// Turns the burst limit off.
    pub fn clear_burst_limit(&self) {
        self.inner.limits.clear_burst();
    }

    /// The calls the quota or the burst switch refused, as `METHOD /path reason`.
    pub fn rate_limited(&self) -> Vec<String> {
        self.inner.limits.refused()
    }

    /// Changes an issue's fields (Jira's shape, as [`FakeJira::update_issue`]) without any
    /// webhook; `updated` moves to now. Returns false when there is no such issue.
    pub fn edit_silently(&self, id_or_key: &str, fields: &Value) -> bool {
        self.inner.apply(id_or_key, fields).is_some()
    }

    /// Deletes an issue without any webhook (as a delivery Jira dropped): afterwards a fetch
    /// is a 404 and the search no longer finds it. Returns false when there is no such issue.
    pub fn delete_silently(&self, id_or_key: &str) -> bool {
        let Some((id, _)) = self.inner.find(id_or_key) else {
            return false;
        };
        lock(&self.inner.issues).remove(&id);
        lock(&self.inner.issue_properties).remove(&id);
        self.inner.sync.forget(&id);
        true
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
        lock(&self.inner.issue_properties).remove(&id);
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
        let body = self
            .inner
            .created_body(id_or_key, user_account_id)
            .ok_or_else(|| format!("no issue {id_or_key}"))?;
        self.inner.send(body).await
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
