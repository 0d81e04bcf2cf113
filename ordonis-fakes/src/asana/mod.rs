//! A fake Asana over real HTTP (axum on `127.0.0.1:0`), for end-to-end tests and the
//! reference server's demo mode.
//!
//! It serves the operations `ordonis-asana`'s client uses, over in-memory tasks keyed by gid:
//!
//! - `GET /tasks/{gid}` and `PUT /tasks/{gid}` (`{"data": …}` envelope; `assignee` as a gid,
//!   `custom_fields` as field gid → enum option gid, `null` clears); rich text as Asana keeps
//!   it (the `rich` module: `html_notes` checked, returned only when `opt_fields` asks, and
//!   wiped by a write of plain `notes`);
//! - `GET /custom_fields/{gid}` for enum fields made with [`FakeAsana::add_enum_field`];
//! - `POST /webhooks` **with the handshake**: before answering, it POSTs an `X-Hook-Secret`
//!   to the target and requires the same header echoed in a 200 or 204; `GET /webhooks`
//!   (offset pagination) and `DELETE /webhooks/{gid}`.
//!
//! Every request needs `Authorization: Bearer <token>` (401 otherwise). Events are compact,
//! as Asana's are (`{"events": [{action, resource: {gid, resource_type}, user, created_at,
//! change}]}`), signed with `X-Hook-Signature` (lowercase hex HMAC-SHA256 of the body under
//! the webhook's secret), and sent to the webhooks on one of the task's projects, each
//! seeing only the events that pass its `filters`; a webhook on a resource that is not a
//! project the fake knows (as in tests made before projects existed) hears every task's
//! events:
//!
//! - [`FakeAsana::change_task`] changes a task as a person in Asana would and sends the
//!   events; [`FakeAsana::delete_task`] deletes one;
//! - a change made through `PUT /tasks/{gid}` (a push) is echoed back as events, as Asana
//!   does, unless [`FakeAsana::set_echo`] turned that off;
//! - comments are story events (`added`, `changed`, `removed` on a `story` whose
//!   `resource_subtype` is `comment_added`; the `stories` module's docs cite Asana's list):
//!   echoed for comments made through the API, delivered for a person's
//!   ([`FakeAsana::comment_as`], [`FakeAsana::edit_comment_as`],
//!   [`FakeAsana::delete_comment_as`]), none for [`FakeAsana::add_comment_as`]. For example:
//!
//!   ```json
//!   {"events": [{"user": {"gid": "1000000000000002", "resource_type": "user"},
//!     "created_at": "2026-12-07T10:00:00Z", "action": "added",
//!     "resource": {"gid": "1200000000000005", "resource_type": "story",
//!                  "resource_subtype": "comment_added"},
//!     "parent": {"gid": "1200000000000003", "resource_type": "task",
//!                "resource_subtype": "default_task"}}]}
//!   ```
//!
//! - links are external attachments (`POST /attachments` as `multipart/form-data` with
//!   `resource_subtype=external`, `parent`, `name`, `url`; `GET /attachments?parent=…`;
//!   `DELETE /attachments/{gid}`; the `attachments` module's docs say how strictly), kept per
//!   task ([`FakeAsana::attachments`]), with a switch that makes one and loses the answer
//!   ([`FakeAsana::lose_next_attachment_answer`]);
//! - task creation (`POST /tasks`, `POST /tasks/{gid}/subtasks`, with `external` data,
//!   `GET /tasks/external:<gid>`; the `create` module's docs say how strictly), with a switch
//!   that makes one and loses the answer ([`FakeAsana::lose_next_create_answer`]);
//! - users (`GET /users/{gid}`, `GET /users/me`) and agents (`GET /agents/{gid}`, `GET
//!   /workspaces/{ws}/agents`, behind `Asana-Enable: ai_teammate_actors`); the `people`
//!   module's docs;
//! - [`FakeAsana::deliver_raw`] sends a given body (e.g. a captured real event) as is.
//!
//! The repair loop's side, in the child modules `events` and `hooks` (see their docs):
//!
//! - projects and memberships, `GET /tasks?project=…` and `GET /projects/{gid}/tasks` with
//!   offset paging, `opt_fields` and (`/tasks` only) `modified_since`;
//! - `GET /events` with sync tokens (412 with a fresh token when missing, unknown or older
//!   than [`SYNC_TOKEN_TTL`] on the fake clock, [`FakeAsana::advance_clock`]); every change
//!   is recorded there, delivered or not ([`FakeAsana::change_task_silently`]);
//! - `GET /webhooks/{gid}` with Asana's health fields; failed deliveries, and deletion after
//!   [`FAILURE_DELETION_AFTER`] of failures or N consecutive ones
//!   ([`FakeAsana::set_webhook_failure_limit`]); [`FakeAsana::delete_webhook_silently`];
//! - faults: [`FakeAsana::fail_next_reads`], [`FakeAsana::fail_next_requests`],
//!   [`FakeAsana::stall_next_reads`].
//!
//! A webhook can also be registered without `POST /webhooks`, as when someone creates it
//! outside the integration: [`FakeAsana::register_webhook`] runs the same handshake against
//! a target URL. Tasks with known gids (those a fixture names) are added with
//! [`FakeAsana::insert_task`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let asana = ordonis_fakes::asana::FakeAsana::start("demo-token").await?;
//! let gid = asana.create_task("Write the README");
//! // Point an `ordonis-asana` integration at `asana.base_url()` with token "demo-token",
//! // create its webhook through the client, then:
//! asana
//!     .change_task(&gid, serde_json::json!({"completed": true}))
//!     .await;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ordonis_core::provider_http::hmac_sha256_hex;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

// The repair loop's half of the fake (projects, event streams, task listing; webhook health
// and faults), kept in their own modules; children, so they reach `Inner`.
mod attachments;
mod create;
mod events;
mod hooks;
mod people;
mod rich;
mod stories;
mod tasks;
mod webhooks;

pub use create::AI_TEAMMATES;
pub use events::SYNC_TOKEN_TTL;
pub use hooks::FAILURE_DELETION_AFTER;
pub use people::WORKSPACE;

/// The user the REST API acts as (the author of echoed events).
pub const API_USER: &str = "1000000000000001";

/// The user [`FakeAsana::change_task`] acts as (a person in Asana).
pub const HUMAN_USER: &str = "1000000000000002";

/// Lowercase hex HMAC-SHA256 of a body, as Asana signs deliveries (`X-Hook-Signature`).
pub fn sign(secret: &str, body: &[u8]) -> String {
    hmac_sha256_hex(secret, body)
}

/// A webhook the fake has registered (after a successful handshake).
#[derive(Clone)]
pub struct FakeWebhook {
    /// Its gid.
    pub gid: String,
    /// The watched resource's gid.
    pub resource: String,
    /// Where deliveries go.
    pub target: String,
    /// The secret agreed in the handshake.
    pub secret: String,
    /// The filters it was created with, as sent.
    pub filters: Value,
}

impl fmt::Debug for FakeWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeWebhook")
            .field("gid", &self.gid)
            .field("resource", &self.resource)
            .field("target", &self.target)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

#[derive(Debug)]
struct Inner {
    token: String,
    tasks: Mutex<BTreeMap<String, Value>>,
    /// Enum custom fields: gid → `{gid, name, resource_subtype, enum_options}`.
    fields: Mutex<HashMap<String, Value>>,
    webhooks: Mutex<Vec<FakeWebhook>>,
    /// Custom fields not on the tasks' project: a `PUT` setting one is a 400 for the whole
    /// request, as Asana answers.
    detached: Mutex<std::collections::BTreeSet<String>>,
    /// Tasks the token cannot see: reads and writes answer 403, as Asana does.
    hidden: Mutex<std::collections::BTreeSet<String>>,
    /// Deleted tasks, kept for `undeleted` (Asana's trash).
    trash: Mutex<BTreeMap<String, Value>>,
    puts: Mutex<Vec<(String, Value)>>,
    next_gid: AtomicU64,
    echo: AtomicBool,
    deliveries: AtomicU64,
    echoes: Arc<crate::in_flight::InFlight>,
    http: reqwest::Client,
    /// How far the fake clock runs ahead of the real one, in ms ([`FakeAsana::advance_clock`]).
    clock_ms: AtomicI64,
    /// Projects, their event streams and the sync tokens handed out.
    streams: Mutex<events::Streams>,
    /// Webhook health, deleted webhooks and the delivery switches.
    health: Mutex<hooks::HealthBook>,
    /// Faults the next requests answer with.
    faults: Mutex<hooks::Faults>,
    /// Stories per task gid, oldest first.
    stories: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Comment posts whose answer is lost after the story is made
    /// ([`FakeAsana::lose_next_story_answer`]).
    lose_story_answers: AtomicU64,
    /// Attachments per parent gid, oldest first.
    attachments: Mutex<BTreeMap<String, Vec<Value>>>,
    /// Attachment posts whose answer is lost after the attachment is made
    /// ([`FakeAsana::lose_next_attachment_answer`]).
    lose_attachment_answers: AtomicU64,
    /// Task creates whose answer is lost after the task is made
    /// ([`FakeAsana::lose_next_create_answer`]).
    lose_create_answers: AtomicU64,
    /// Projects the token may not add tasks to ([`FakeAsana::deny_create_in`]).
    create_denied: Mutex<std::collections::BTreeSet<String>>,
    /// Users by gid (`{gid, resource_type, name, email}`).
    users: Mutex<BTreeMap<String, Value>>,
    /// Agents (AI teammates) by gid.
    agents: Mutex<BTreeMap<String, Value>>,
}

/// Why the `X-Hook-Secret` handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The target could not be reached.
    #[error("the handshake request failed: {0}")]
    Unreachable(String),
    /// The target answered something other than 200 or 204.
    #[error("the target answered the handshake with {0}")]
    Status(u16),
    /// The target did not echo the secret in `X-Hook-Secret`.
    #[error("the target did not echo the handshake secret")]
    NoEcho,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn errors(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errors": [{"message": message}]})),
    )
        .into_response()
}

fn data(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(json!({ "data": value }))).into_response()
}

impl Inner {
    /// The fake clock: the real time plus every [`FakeAsana::advance_clock`].
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.clock_ms.load(Ordering::SeqCst))
    }

    /// The fake clock as Asana writes times (RFC 3339).
    fn stamp(&self) -> String {
        rfc3339(self.now())
    }

    fn gid(&self) -> String {
        self.next_gid.fetch_add(1, Ordering::SeqCst).to_string()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == self.token)
    }

    /// Applies `changes` (task fields as `PUT` takes them) to a task; returns the names of
    /// the fields that changed.
    fn apply(&self, task: &mut Value, changes: &Map<String, Value>) -> Vec<String> {
        let mut changed = Vec::new();
        for (k, v) in changes {
            match k.as_str() {
                "assignee" => {
                    let new = match v {
                        Value::String(gid) => match lock(&self.agents).get(gid.as_str()) {
                            Some(a) => {
                                json!({"gid": gid, "resource_type": "agent", "name": a["name"]})
                            }
                            None => match lock(&self.users).get(gid.as_str()) {
                                Some(u) => {
                                    json!({"gid": gid, "resource_type": "user", "name": u["name"]})
                                }
                                None => {
                                    json!({"gid": gid, "resource_type": "user", "name": format!("User {gid}")})
                                }
                            },
                        },
                        _ => Value::Null,
                    };
                    if task["assignee"] != new {
                        task["assignee"] = new;
                        changed.push(k.clone());
                    }
                }
                "custom_fields" => {
                    let Some(map) = v.as_object() else { continue };
                    for (field_gid, option) in map {
                        let def = lock(&self.fields).get(field_gid).cloned();
                        let Some(def) = def else { continue };
                        let enum_value = option.as_str().and_then(|o| {
                            def["enum_options"]
                                .as_array()?
                                .iter()
                                .find(|opt| opt["gid"] == o)
                                .cloned()
                        });
                        let entry = json!({
                            "gid": field_gid, "name": def["name"],
                            "resource_subtype": "enum",
                            "enum_value": enum_value.unwrap_or(Value::Null)
                        });
                        let list = task["custom_fields"].as_array_mut();
                        let Some(list) = list else { continue };
                        match list.iter_mut().find(|f| f["gid"] == field_gid.as_str()) {
                            Some(f) if *f != entry => {
                                *f = entry;
                                changed.push(k.clone());
                            }
                            Some(_) => {}
                            None => {
                                list.push(entry);
                                changed.push(k.clone());
                            }
                        }
                    }
                }
                // Plain notes replace the rich text (formatting and mentions are gone).
                "notes" => {
                    let notes = v.as_str().unwrap_or_default();
                    let html = rich::from_notes(notes);
                    if task["notes"] != notes || task["html_notes"] != html.as_str() {
                        task["notes"] = Value::String(notes.to_owned());
                        task["html_notes"] = Value::String(html);
                        changed.push("notes".to_owned());
                    }
                }
                // Rich text (checked before `apply` by `PUT`), with the plain text it implies.
                "html_notes" => {
                    let Some(html) = v.as_str() else { continue };
                    let Ok(notes) = rich::check(html) else {
                        continue;
                    };
                    if task["html_notes"] != html {
                        task["html_notes"] = Value::String(html.to_owned());
                        task["notes"] = Value::String(notes);
                        changed.push("notes".to_owned());
                    }
                }
                "name" | "completed" | "due_on" | "due_at" | "start_on" if task[k] != *v => {
                    task[k] = v.clone();
                    changed.push(k.clone());
                }
                _ => {}
            }
        }
        changed.dedup();
        if !changed.is_empty() {
            task["modified_at"] = Value::String(self.stamp());
        }
        changed
    }

    /// Task events about `gid`: recorded in the event stream of each of the task's projects
    /// (always, as Asana's `/events` has them whether or not a webhook hears them), then
    /// delivered to the webhooks watching one of those projects (or a resource that is not
    /// a project the fake knows). Returns how many deliveries were answered 2xx.
    async fn announce(&self, gid: &str, events: Vec<Value>, deliver: bool) -> usize {
        let projects = self.projects_of(gid);
        self.record(&projects, &events);
        if !deliver {
            return 0;
        }
        self.deliver_to(Some(&projects), events).await
    }

    /// Sends one signed event batch to the webhooks that watch `projects` (all when `None`),
    /// each seeing only the events that pass its filters; returns how many answered 2xx.
    async fn deliver_to(&self, projects: Option<&[String]>, events: Vec<Value>) -> usize {
        let hooks: Vec<FakeWebhook> = {
            let streams = lock(&self.streams);
            lock(&self.webhooks)
                .iter()
                .filter(|h| {
                    projects.is_none_or(|ps| {
                        ps.contains(&h.resource) || !streams.is_project(&h.resource)
                    })
                })
                .cloned()
                .collect()
        };
        let mut ok = 0;
        for h in hooks {
            let passed: Vec<Value> = events
                .iter()
                .filter(|e| hooks::passes(&h.filters, e))
                .cloned()
                .collect();
            if passed.is_empty() && !events.is_empty() {
                continue;
            }
            let body = Bytes::from(json!({ "events": passed }).to_string());
            if self.send(&h, &body).await {
                ok += 1;
            }
        }
        ok
    }

    /// Sends a body as is, signed, to every webhook; returns how many answered 2xx.
    async fn deliver_body(&self, body: Bytes) -> usize {
        let hooks = lock(&self.webhooks).clone();
        let mut ok = 0;
        for h in hooks {
            if self.send(&h, &body).await {
                ok += 1;
            }
        }
        ok
    }

    /// Asana's handshake: POSTs a fresh `X-Hook-Secret` to `target`, which must echo it in
    /// a 200 or 204; then registers the webhook.
    async fn handshake(
        &self,
        resource: &str,
        target: &str,
        filters: Value,
    ) -> Result<FakeWebhook, HandshakeError> {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let answer = self
            .http
            .post(target)
            .header("x-hook-secret", &secret)
            .send()
            .await
            .map_err(|e| HandshakeError::Unreachable(e.to_string()))?;
        let status = answer.status().as_u16();
        if status != 200 && status != 204 {
            return Err(HandshakeError::Status(status));
        }
        let echoed = answer
            .headers()
            .get("x-hook-secret")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == secret);
        if !echoed {
            return Err(HandshakeError::NoEcho);
        }
        let hook = FakeWebhook {
            gid: self.gid(),
            resource: resource.to_owned(),
            target: target.to_owned(),
            secret,
            filters,
        };
        lock(&self.webhooks).push(hook.clone());
        // The handshake counts as the first successful delivery (a heartbeat).
        let now = self.now();
        lock(&self.health).created(&hook.gid, now);
        Ok(hook)
    }
}

fn task_events(at: &str, gid: &str, user: &str, action: &str, fields: &[String]) -> Vec<Value> {
    let event = |change: Option<&String>| {
        let mut e = json!({
            "user": {"gid": user, "resource_type": "user"},
            "created_at": at,
            "action": action,
            "resource": {"gid": gid, "resource_type": "task", "resource_subtype": "default_task"},
            "parent": null
        });
        if let Some(f) = change {
            e["change"] = json!({"field": f, "action": "changed"});
        }
        e
    };
    if fields.is_empty() {
        vec![event(None)]
    } else {
        fields.iter().map(|f| event(Some(f))).collect()
    }
}

/// A running fake Asana. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeAsana {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Drop for FakeAsana {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeAsana {
    /// Starts a fake on `127.0.0.1:0` that accepts `token` as its bearer token.
    pub async fn start(token: impl Into<String>) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let inner = Arc::new(Inner {
            token: token.into(),
            tasks: Mutex::default(),
            fields: Mutex::default(),
            webhooks: Mutex::default(),
            hidden: Mutex::default(),
            detached: Mutex::default(),
            trash: Mutex::default(),
            puts: Mutex::default(),
            next_gid: AtomicU64::new(1_200_000_000_000_001),
            echo: AtomicBool::new(true),
            deliveries: AtomicU64::new(0),
            echoes: Arc::default(),
            http,
            clock_ms: AtomicI64::new(0),
            streams: Mutex::default(),
            health: Mutex::default(),
            faults: Mutex::default(),
            stories: Mutex::default(),
            lose_story_answers: AtomicU64::new(0),
            attachments: Mutex::default(),
            lose_attachment_answers: AtomicU64::new(0),
            lose_create_answers: AtomicU64::new(0),
            create_denied: Mutex::default(),
            users: Mutex::new(BTreeMap::from([
                (
                    API_USER.to_owned(),
                    people::user(API_USER, "Ordonis API", "api@ordonis.example"),
                ),
                (
                    HUMAN_USER.to_owned(),
                    people::user(HUMAN_USER, "Greg", "greg@example.com"),
                ),
            ])),
            agents: Mutex::default(),
        });
        let app = Router::new()
            .route("/tasks/{gid}", get(tasks::get_task).put(tasks::put_task))
            .route("/custom_fields/{gid}", get(tasks::get_field))
            .route(
                "/tasks/{gid}/stories",
                get(stories::list).post(stories::create),
            )
            .route(
                "/stories/{gid}",
                get(stories::get_one)
                    .put(stories::update)
                    .delete(stories::delete),
            )
            .route(
                "/attachments",
                get(attachments::list).post(attachments::create),
            )
            .route(
                "/attachments/{gid}",
                get(attachments::get_one).delete(attachments::delete),
            )
            .route(
                "/webhooks",
                get(webhooks::list_webhooks).post(webhooks::create_webhook),
            )
            .route(
                "/webhooks/{gid}",
                get(hooks::get_webhook).delete(webhooks::delete_webhook),
            )
            .route("/tasks", get(events::list_tasks).post(create::create_task))
            .route(
                "/tasks/{gid}/subtasks",
                get(events::subtasks).post(create::create_subtask),
            )
            .route("/users/{gid}", get(people::get_user))
            .route("/agents/{gid}", get(people::get_agent))
            .route("/workspaces/{gid}/agents", get(people::list_agents))
            .route("/projects/{gid}/tasks", get(events::project_tasks))
            .route("/events", get(events::get_events))
            .layer(axum::middleware::from_fn_with_state(
                inner.clone(),
                hooks::faults,
            ))
            .route("/0/0/{gid}", get(tasks::browse))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { signal.cancelled().await })
                .await;
        });
        Ok(Self { addr, inner, stop })
    }

    /// The base URL to configure as the integration's API base (`http://127.0.0.1:<port>`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The stories of a task (comments and system stories), oldest first.
    pub fn stories(&self, task: &str) -> Vec<Value> {
        lock(&self.inner.stories)
            .get(task)
            .cloned()
            .unwrap_or_default()
    }

    /// A person comments on a task with plain `text`; the story's gid.
    pub fn add_comment_as(&self, task: &str, user: &str, name: &str, text: &str) -> String {
        let html = format!(
            "<body>{}</body>",
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        );
        let story = self.inner.new_story(task, (user, name), text, &html);
        story["gid"].as_str().unwrap_or_default().to_owned()
    }

    /// Asana notes a change on a task as a system story ("changed the due date").
    pub fn add_system_story(&self, task: &str, subtype: &str, text: &str) {
        let story = json!({
            "gid": self.inner.gid(), "resource_type": "story", "resource_subtype": subtype,
            "type": "system", "text": text, "created_at": self.inner.stamp(),
            "created_by": {"gid": HUMAN_USER, "name": "Greg", "resource_type": "user"},
        });
        lock(&self.inner.stories)
            .entry(task.to_owned())
            .or_default()
            .push(story);
    }

    /// The next `n` comment posts make their story, then answer `504` as if the answer were
    /// lost on the way back (a client must find the story before posting again).
    pub fn lose_next_story_answer(&self, n: u64) {
        self.inner.lose_story_answers.store(n, Ordering::SeqCst);
    }

    /// Whether changes made through the API — pushes (`PUT /tasks/{gid}`) and comments
    /// (`POST /tasks/{gid}/stories`, `PUT`/`DELETE /stories/{gid}`) — are echoed back as
    /// events to the webhooks (default: yes). Off, they are still recorded in `GET /events`.
    pub fn set_echo(&self, on: bool) {
        self.inner.echo.store(on, Ordering::SeqCst);
    }

    /// Creates a task with a name (not completed, unassigned, no due date); returns its gid.
    /// No event is sent.
    pub fn create_task(&self, name: &str) -> String {
        let gid = self.inner.gid();
        self.insert_task(&gid, name);
        gid
    }

    /// Adds (or replaces) a task with a given gid, e.g. the one a captured event names, as
    /// [`FakeAsana::create_task`] makes them. No event is sent.
    pub fn insert_task(&self, gid: &str, name: &str) {
        let task = json!({
            "gid": gid, "resource_type": "task", "resource_subtype": "default_task",
            "name": name, "notes": "", "html_notes": "<body></body>", "completed": false, "assignee": null,
            "due_on": null, "due_at": null, "start_on": null, "custom_fields": [], "memberships": [],
            "modified_at": self.inner.stamp(),
            "permalink_url": format!("https://app.asana.com/0/0/{gid}")
        });
        lock(&self.inner.tasks).insert(gid.to_owned(), task);
    }

    /// A permalink to a task on this fake (`<base>/0/0/<gid>`), which it serves: point a
    /// task's `permalink_url` at it with [`FakeAsana::set_permalink`] so links lead somewhere.
    pub fn permalink(&self, gid: &str) -> String {
        format!("{}/0/0/{gid}", self.base_url())
    }

    /// Sets a task's `permalink_url` (any string: e.g. a hostile `javascript:` one, for the
    /// UI). No event is sent. `false` when the task does not exist.
    pub fn set_permalink(&self, gid: &str, url: &str) -> bool {
        match lock(&self.inner.tasks).get_mut(gid) {
            Some(task) => {
                task["permalink_url"] = Value::String(url.to_owned());
                true
            }
            None => false,
        }
    }

    /// Adds an enum custom field with these option names; returns the field's gid and the
    /// options' gids, in order.
    pub fn add_enum_field(&self, name: &str, options: &[&str]) -> (String, Vec<String>) {
        let gid = self.inner.gid();
        let opts: Vec<(String, &str)> = options.iter().map(|o| (self.inner.gid(), *o)).collect();
        let def = json!({
            "gid": gid, "resource_type": "custom_field", "name": name,
            "resource_subtype": "enum",
            "enum_options": opts.iter().map(|(g, n)| json!({
                "gid": g, "resource_type": "enum_option", "name": n, "enabled": true
            })).collect::<Vec<_>>()
        });
        lock(&self.inner.fields).insert(gid.clone(), def);
        (gid, opts.into_iter().map(|(g, _)| g).collect())
    }

    /// The task as `GET /tasks/{gid}` would return it.
    pub fn task(&self, gid: &str) -> Option<Value> {
        lock(&self.inner.tasks).get(gid).cloned()
    }

    /// The `data` of every `PUT /tasks/{gid}` received, in order, with the task gid.
    pub fn puts(&self) -> Vec<(String, Value)> {
        lock(&self.inner.puts).clone()
    }

    /// The registered webhooks.
    pub fn webhooks(&self) -> Vec<FakeWebhook> {
        lock(&self.inner.webhooks).clone()
    }

    /// Registers a webhook on `resource` delivering to `target`, as `POST /webhooks` does
    /// (after the same handshake, with a fresh secret), for a receiver whose integration
    /// did not create it itself.
    pub async fn register_webhook(
        &self,
        resource: &str,
        target: &str,
    ) -> Result<FakeWebhook, HandshakeError> {
        self.inner.handshake(resource, target, json!([])).await
    }

    /// Waits until every echo of a push made so far has been delivered, at most `within`;
    /// false on time-out. Echoes are delivered in the background after the `PUT` is
    /// answered, as Asana does.
    pub async fn echoes_sent(&self, within: std::time::Duration) -> bool {
        self.inner.echoes.wait_idle(within).await
    }

    /// How many deliveries (one per webhook per batch, echoes included) have been sent.
    pub fn deliveries(&self) -> u64 {
        self.inner.deliveries.load(Ordering::SeqCst)
    }

    /// Sends `body` as is (e.g. a captured real event), signed under each webhook's secret,
    /// to every webhook. Returns how many answered 2xx.
    pub async fn deliver_raw(&self, body: &[u8]) -> usize {
        self.inner.deliver_body(Bytes::copy_from_slice(body)).await
    }

    /// Changes a task as a person in Asana would (`changes` as `PUT` takes them: `name`,
    /// `notes` or `html_notes`, `completed`, `assignee` gid, `due_on`, `custom_fields`) and sends one event
    /// per changed field. Returns how many webhooks accepted the delivery, or `None` when the
    /// task does not exist.
    pub async fn change_task(&self, gid: &str, changes: Value) -> Option<usize> {
        let empty = Map::new();
        let changes = changes.as_object().unwrap_or(&empty);
        let changed = {
            let mut tasks = lock(&self.inner.tasks);
            let task = tasks.get_mut(gid)?;
            self.inner.apply(task, changes)
        };
        if changed.is_empty() {
            return Some(0);
        }
        let events = task_events(&self.inner.stamp(), gid, HUMAN_USER, "changed", &changed);
        Some(self.inner.announce(gid, events, true).await)
    }

    /// Sets a task's start date (as a person in Asana would; no event).
    pub fn set_start_on(&self, gid: &str, date: &str) -> bool {
        match lock(&self.inner.tasks).get_mut(gid) {
            Some(t) => {
                t["start_on"] = Value::String(date.to_owned());
                true
            }
            None => false,
        }
    }

    /// Takes a custom field off the tasks' project: a `PUT` that sets it is refused whole.
    pub fn detach_field(&self, field_gid: &str) {
        lock(&self.inner.detached).insert(field_gid.to_owned());
    }

    /// Makes a task invisible to the token (a narrow scope, or the account removed from a
    /// private project): `GET`/`PUT` answer 403 until [`FakeAsana::show_task`]. Then a change
    /// to it is announced (Asana still sends the event to the webhook's owner).
    pub async fn hide_task(&self, gid: &str) -> Option<usize> {
        lock(&self.inner.hidden).insert(gid.to_owned());
        Some(self.announce_change(gid).await)
    }

    /// Makes a hidden task visible again and announces a change to it.
    pub async fn show_task(&self, gid: &str) -> Option<usize> {
        lock(&self.inner.hidden).remove(gid);
        Some(self.announce_change(gid).await)
    }

    /// Sends a person's `changed` event about a task (its name), as Asana would after an edit.
    async fn announce_change(&self, gid: &str) -> usize {
        let at = self.inner.stamp();
        let events = task_events(&at, gid, HUMAN_USER, "changed", &["name".to_owned()]);
        self.inner.announce(gid, events, true).await
    }

    /// Restores a deleted task from the trash and sends the `undeleted` event.
    pub async fn undelete_task(&self, gid: &str) -> Option<usize> {
        let task = lock(&self.inner.trash).remove(gid)?;
        lock(&self.inner.tasks).insert(gid.to_owned(), task);
        let events = task_events(&self.inner.stamp(), gid, HUMAN_USER, "undeleted", &[]);
        Some(self.inner.announce(gid, events, true).await)
    }

    /// Deletes a task and sends the `deleted` event. `None` when it does not exist.
    pub async fn delete_task(&self, gid: &str) -> Option<usize> {
        let task = lock(&self.inner.tasks).remove(gid)?;
        lock(&self.inner.trash).insert(gid.to_owned(), task);
        let events = task_events(&self.inner.stamp(), gid, HUMAN_USER, "deleted", &[]);
        Some(self.inner.announce(gid, events, true).await)
    }

    /// Sends a heartbeat (`{"events":[]}`, signed) to every webhook.
    pub async fn heartbeat(&self) -> usize {
        self.inner.deliver_to(None, Vec::new()).await
    }
}
