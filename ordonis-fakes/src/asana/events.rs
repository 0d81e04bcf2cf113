//! [`FakeAsana`]'s projects, event streams and task listing, as strict as Asana's:
//!
//! - tasks belong to projects through `memberships` ([`FakeAsana::add_project`],
//!   [`FakeAsana::seed_task_in`], [`FakeAsana::create_task_in`],
//!   [`FakeAsana::add_to_project`], [`FakeAsana::remove_from_project`]); subtasks
//!   ([`FakeAsana::create_subtask`]) are in no project, and their events reach their
//!   parent's projects;
//! - `GET /tasks?project=<gid>` takes `modified_since`, `completed_since`, `opt_fields`,
//!   `limit` (1–100) and `offset` (opaque, `next_page: {offset, path, uri}`);
//!   `GET /projects/{gid}/tasks` pages the same way but, as Asana's, has no `modified_since`
//!   (it is ignored there). Records are compact (`gid`, `resource_type`, `name`,
//!   `resource_subtype`) unless `opt_fields` names more;
//! - `GET /events?resource=<project>&sync=<token>`: without a token, or with an unknown or
//!   expired one, 412 with `errors` and a fresh `sync` token; with a valid one, the project's
//!   events since the token (at most 100, `has_more`) and a new token. Tokens expire
//!   [`SYNC_TOKEN_TTL`] after they were issued, on the fake clock
//!   ([`FakeAsana::advance_clock`]).
//!
//! Every task change the fake makes (a person's edit, a push, a deletion, a membership
//! change) is recorded in the streams of the task's projects, whether or not a webhook
//! hears it: [`FakeAsana::change_task_silently`] changes a task with no delivery at all, as
//! when a webhook delivery is lost. Comment events (a story added, changed or removed; see
//! the `stories` module) are recorded in the streams of the comment's task's projects in
//! the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{FakeAsana, HUMAN_USER, Inner, errors, lock, task_events};

/// How long a sync token of `GET /events` stays valid (Asana: 24 h).
pub const SYNC_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Events per `GET /events` answer (Asana: 100, then `has_more`).
const EVENTS_PER_PAGE: usize = 100;

/// The compact task fields a listing returns without `opt_fields`.
const COMPACT: [&str; 4] = ["gid", "resource_type", "name", "resource_subtype"];

/// Asana's message for a missing or too old sync token.
const TOKEN_INVALID: &str = "Sync token invalid or too old. If you are attempting to keep \
resources in sync, you must fetch the full dataset for this query now and use the new sync \
token for the next sync.";

#[derive(Debug)]
struct Token {
    project: String,
    /// Index into the log of the first event the token has not seen.
    position: usize,
    issued: OffsetDateTime,
}

/// Projects, one log of (project, event) in order, and the tokens handed out.
#[derive(Debug, Default)]
pub(super) struct Streams {
    projects: BTreeMap<String, String>,
    log: Vec<(String, Value)>,
    tokens: HashMap<String, Token>,
}

impl Streams {
    /// Whether `gid` is a project the fake knows.
    pub(super) fn is_project(&self, gid: &str) -> bool {
        self.projects.contains_key(gid)
    }

    /// A known project's name.
    pub(super) fn project_name(&self, gid: &str) -> Option<String> {
        self.projects.get(gid).cloned()
    }

    fn issue(&mut self, project: &str, position: usize, now: OffsetDateTime) -> String {
        let token = hex::encode(rand::random::<[u8; 16]>());
        self.tokens.insert(
            token.clone(),
            Token {
                project: project.to_owned(),
                position,
                issued: now,
            },
        );
        token
    }
}

impl Inner {
    /// The projects whose streams and webhooks see a task's events: its own memberships,
    /// and for a subtask its parent's (Asana's events "propagate up": a project webhook
    /// sees its tasks' subtasks).
    pub(super) fn projects_of(&self, gid: &str) -> Vec<String> {
        let mut out = self.member_of(gid);
        let mut at = gid.to_owned();
        // Subtasks nest; a few levels are plenty for tests (and a cycle cannot loop).
        for _ in 0..5 {
            let parent = {
                let tasks = lock(&self.tasks);
                tasks
                    .get(&at)
                    .and_then(|t| t["parent"]["gid"].as_str())
                    .map(str::to_owned)
            };
            let Some(p) = parent else { break };
            for project in self.member_of(&p) {
                if !out.contains(&project) {
                    out.push(project);
                }
            }
            at = p;
        }
        out
    }

    /// The projects a task (live or in the trash) is a member of.
    fn member_of(&self, gid: &str) -> Vec<String> {
        let from = |t: &Value| -> Vec<String> {
            t["memberships"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|m| m["project"]["gid"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(t) = lock(&self.tasks).get(gid) {
            return from(t);
        }
        lock(&self.trash).get(gid).map(from).unwrap_or_default()
    }

    /// Appends events to the streams of `projects` (those the fake knows).
    pub(super) fn record(&self, projects: &[String], events: &[Value]) {
        let mut streams = lock(&self.streams);
        for p in projects {
            if !streams.is_project(p) {
                continue;
            }
            for e in events {
                streams.log.push((p.clone(), e.clone()));
            }
        }
    }
}

fn membership(project: &str, name: &str) -> Value {
    json!({"project": {"gid": project, "resource_type": "project", "name": name}})
}

fn membership_event(at: &str, task: &str, action: &str, project: &str) -> Value {
    json!({
        "user": {"gid": HUMAN_USER, "resource_type": "user"},
        "created_at": at,
        "action": action,
        "resource": {"gid": task, "resource_type": "task", "resource_subtype": "default_task"},
        "parent": {"gid": project, "resource_type": "project"}
    })
}

impl FakeAsana {
    /// Adds a project; returns its gid. Its event stream starts empty.
    pub fn add_project(&self, name: &str) -> String {
        let gid = self.inner.gid();
        self.insert_project(&gid, name);
        gid
    }

    /// Adds (or renames) a project with a given gid.
    pub fn insert_project(&self, gid: &str, name: &str) {
        lock(&self.inner.streams)
            .projects
            .insert(gid.to_owned(), name.to_owned());
    }

    /// Creates a task in `project` as if it had been there before anyone watched: no event
    /// is recorded or sent (seed data for a backfill). Returns its gid.
    pub fn seed_task_in(&self, project: &str, name: &str) -> String {
        let gid = self.create_task(name);
        let pname = lock(&self.inner.streams)
            .projects
            .get(project)
            .cloned()
            .unwrap_or_default();
        if let Some(t) = lock(&self.inner.tasks).get_mut(&gid) {
            t["memberships"] = json!([membership(project, &pname)]);
        }
        gid
    }

    /// Creates a task in `project` as a person in Asana would: the `added` event (parent:
    /// the project) is recorded and delivered. Returns its gid.
    pub async fn create_task_in(&self, project: &str, name: &str) -> String {
        let gid = self.seed_task_in(project, name);
        let at = self.inner.stamp();
        let events = vec![membership_event(&at, &gid, "added", project)];
        self.inner.announce(&gid, events, true).await;
        gid
    }

    /// Adds a task to a project (the `added` event, recorded and delivered). `None` when the
    /// task does not exist.
    pub async fn add_to_project(&self, task: &str, project: &str) -> Option<usize> {
        let pname = lock(&self.inner.streams)
            .projects
            .get(project)
            .cloned()
            .unwrap_or_default();
        let at = self.inner.stamp();
        {
            let mut tasks = lock(&self.inner.tasks);
            let t = tasks.get_mut(task)?;
            let list = t["memberships"].as_array_mut()?;
            if list.iter().any(|m| m["project"]["gid"] == project) {
                return Some(0);
            }
            list.push(membership(project, &pname));
            t["modified_at"] = Value::String(at.clone());
        }
        let events = vec![membership_event(&at, task, "added", project)];
        Some(self.inner.announce(task, events, true).await)
    }

    /// Creates a subtask of `parent` as a person would: in no project (as Asana's subtasks
    /// are, until someone adds one to a project), with `parent` set; the `added` event
    /// (resource: the subtask, parent: the parent task) reaches the parent's projects.
    /// `None` when the parent does not exist.
    pub async fn create_subtask(&self, parent: &str, name: &str) -> Option<String> {
        let parent_name = lock(&self.inner.tasks).get(parent)?["name"].clone();
        let gid = self.create_task(name);
        if let Some(t) = lock(&self.inner.tasks).get_mut(&gid) {
            t["parent"] = json!({"gid": parent, "resource_type": "task", "name": parent_name});
        }
        let at = self.inner.stamp();
        let mut event = membership_event(&at, &gid, "added", parent);
        event["parent"]["resource_type"] = json!("task");
        self.inner.announce(&gid, vec![event], true).await;
        Some(gid)
    }

    /// Removes a task from a project: the `removed` event goes to that project's stream and
    /// webhooks (the task is no longer in it). `None` when the task does not exist.
    pub async fn remove_from_project(&self, task: &str, project: &str) -> Option<usize> {
        let at = self.inner.stamp();
        {
            let mut tasks = lock(&self.inner.tasks);
            let t = tasks.get_mut(task)?;
            let list = t["memberships"].as_array_mut()?;
            let before = list.len();
            list.retain(|m| m["project"]["gid"] != project);
            if list.len() == before {
                return Some(0);
            }
            t["modified_at"] = Value::String(at.clone());
        }
        let events = vec![membership_event(&at, task, "removed", project)];
        let projects = vec![project.to_owned()];
        self.inner.record(&projects, &events);
        Some(self.inner.deliver_to(Some(&projects), events).await)
    }

    /// Changes a task as a person would ([`FakeAsana::change_task`]'s `changes`), recording
    /// the events in its projects' streams but delivering nothing: a lost webhook delivery.
    /// `false` when the task does not exist.
    pub async fn change_task_silently(&self, gid: &str, changes: Value) -> bool {
        let empty = Map::new();
        let changes = changes.as_object().unwrap_or(&empty);
        let changed = {
            let mut tasks = lock(&self.inner.tasks);
            let Some(task) = tasks.get_mut(gid) else {
                return false;
            };
            self.inner.apply(task, changes)
        };
        if !changed.is_empty() {
            let events = task_events(&self.inner.stamp(), gid, HUMAN_USER, "changed", &changed);
            self.inner.announce(gid, events, false).await;
        }
        true
    }

    /// Moves the fake clock forward: task times, event times, sync-token expiry and webhook
    /// failure deletion all follow it.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.inner
            .clock_ms
            .fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// The fake clock's now.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.now()
    }

    /// Invalidates every sync token handed out (Asana says tokens may expire early): the
    /// next `GET /events` with one answers 412.
    pub fn expire_sync_tokens(&self) {
        lock(&self.inner.streams).tokens.clear();
    }

    /// The events recorded in a project's stream, oldest first.
    pub fn events_of(&self, project: &str) -> Vec<Value> {
        lock(&self.inner.streams)
            .log
            .iter()
            .filter(|(p, _)| p == project)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// `GET /events?resource=…&sync=…`.
pub(super) async fn get_events(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some(resource) = q.get("resource") else {
        return errors(StatusCode::BAD_REQUEST, "resource: Missing input");
    };
    let now = s.now();
    let mut streams = lock(&s.streams);
    if !streams.is_project(resource) {
        return errors(StatusCode::NOT_FOUND, "Unknown object");
    }
    let valid = q
        .get("sync")
        .and_then(|t| streams.tokens.get(t))
        .filter(|t| {
            t.project == *resource
                && now - t.issued <= time::Duration::try_from(SYNC_TOKEN_TTL).unwrap_or_default()
        });
    let Some(position) = valid.map(|t| t.position) else {
        let end = streams.log.len();
        let sync = streams.issue(resource, end, now);
        return (
            StatusCode::PRECONDITION_FAILED,
            axum::Json(json!({"errors": [{"message": TOKEN_INVALID}], "sync": sync})),
        )
            .into_response();
    };
    let mut data = Vec::new();
    let mut next = streams.log.len();
    let mut has_more = false;
    for (i, (p, e)) in streams.log.iter().enumerate().skip(position) {
        if p != resource {
            continue;
        }
        if data.len() == EVENTS_PER_PAGE {
            has_more = true;
            next = i;
            break;
        }
        data.push(e.clone());
    }
    let sync = streams.issue(resource, next, now);
    axum::Json(json!({"data": data, "sync": sync, "has_more": has_more})).into_response()
}

/// `GET /tasks?project=…`.
pub(super) async fn list_tasks(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some(project) = q.get("project").cloned() else {
        return errors(
            StatusCode::BAD_REQUEST,
            "Must specify exactly one of project, tag, section, user task list, or assignee + \
             workspace",
        );
    };
    task_page(&s, &headers, &project, &q, true)
}

/// `GET /projects/{gid}/tasks` (no `modified_since` here, as in Asana).
pub(super) async fn project_tasks(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    task_page(&s, &headers, &project, &q, false)
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()
}

/// Only the fields a listing returns: the compact ones plus those `opt_fields` names (by
/// their first path segment: `assignee.name` keeps `assignee`).
fn project_fields(task: &Value, opt_fields: Option<&str>) -> Value {
    let mut out = Map::new();
    let wanted: Vec<&str> = opt_fields
        .map(|f| {
            f.split(',')
                .filter_map(|p| p.trim().split('.').next())
                .collect()
        })
        .unwrap_or_default();
    for (k, v) in task.as_object().into_iter().flatten() {
        if COMPACT.contains(&k.as_str()) || wanted.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn task_page(
    s: &Inner,
    headers: &HeaderMap,
    project: &str,
    q: &HashMap<String, String>,
    modified_since_allowed: bool,
) -> Response {
    if !lock(&s.streams).is_project(project) {
        return errors(StatusCode::NOT_FOUND, "project: Unknown object");
    }
    let since = match q.get("modified_since").filter(|_| modified_since_allowed) {
        None => None,
        Some(v) => match parse_time(v) {
            Some(t) => Some(t),
            None => return errors(StatusCode::BAD_REQUEST, "modified_since: Invalid date"),
        },
    };
    let completed_since = match q.get("completed_since").map(String::as_str) {
        None => None,
        Some("now") => Some(s.now()),
        Some(v) => match parse_time(v) {
            Some(t) => Some(t),
            None => return errors(StatusCode::BAD_REQUEST, "completed_since: Invalid date"),
        },
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => None,
        Some(Ok(l)) if (1..=100).contains(&l) => Some(l),
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                "limit: Must be an integer between 1 and 100",
            );
        }
    };
    let start = match q.get("offset") {
        None => 0,
        Some(o) => match decode_offset(o, project) {
            Some(i) => i,
            None => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "offset: Your pagination token is invalid",
                );
            }
        },
    };
    if limit.is_none() && q.contains_key("offset") {
        return errors(StatusCode::BAD_REQUEST, "offset: Requires a limit");
    }
    let all: Vec<Value> = lock(&s.tasks)
        .values()
        .filter(|t| {
            t["memberships"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["project"]["gid"] == project))
        })
        .filter(|t| {
            since.is_none_or(|since| {
                t["modified_at"]
                    .as_str()
                    .and_then(parse_time)
                    .is_some_and(|m| m >= since)
            })
        })
        .filter(|t| {
            completed_since.is_none_or(|c| {
                t["completed"] != true
                    || t["completed_at"]
                        .as_str()
                        .and_then(parse_time)
                        .is_some_and(|at| at >= c)
            })
        })
        .cloned()
        .collect();
    let opt_fields = q.get("opt_fields").map(String::as_str);
    let take = limit.unwrap_or(all.len());
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(take)
        .map(|t| project_fields(t, opt_fields))
        .collect();
    let end = start + page.len();
    let next_page = match limit {
        Some(_) if end < all.len() => {
            let offset = encode_offset(project, end);
            let mut query: Vec<(String, String)> = q
                .iter()
                .filter(|(k, _)| k.as_str() != "offset")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            query.sort();
            query.push(("offset".to_owned(), offset.clone()));
            let qs = query
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let path = if modified_since_allowed {
                format!("/tasks?{qs}")
            } else {
                format!("/projects/{project}/tasks?{qs}")
            };
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            json!({"offset": offset, "path": path, "uri": format!("http://{host}{path}")})
        }
        _ => Value::Null,
    };
    axum::Json(json!({"data": page, "next_page": next_page})).into_response()
}

fn encode_offset(project: &str, index: usize) -> String {
    hex::encode(format!("{project}:{index}"))
}

fn decode_offset(offset: &str, project: &str) -> Option<usize> {
    let raw = String::from_utf8(hex::decode(offset).ok()?).ok()?;
    let (p, i) = raw.split_once(':')?;
    (p == project).then(|| i.parse().ok()).flatten()
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /tasks/{gid}/subtasks`: the task's subtasks (compact, plus what `opt_fields` names),
/// in pages of `limit` (1–100) with an opaque `offset`; `404` for an unknown task.
pub(super) async fn subtasks(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(parent): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if lock(&s.hidden).contains(&parent) {
        return errors(
            StatusCode::FORBIDDEN,
            "You do not have access to the requested object.",
        );
    }
    let all: Vec<Value> = {
        let tasks = lock(&s.tasks);
        if !tasks.contains_key(&parent) {
            return errors(StatusCode::NOT_FOUND, "task: Unknown object");
        }
        tasks
            .values()
            .filter(|t| t["parent"]["gid"].as_str() == Some(parent.as_str()))
            .cloned()
            .collect()
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => {
            return errors(
                StatusCode::BAD_REQUEST,
                "limit: Must be an integer between 1 and 100",
            );
        }
    };
    let start = match q.get("offset") {
        None => 0,
        Some(o) => match decode_offset(o, &parent) {
            Some(i) => i,
            None => {
                return errors(
                    StatusCode::BAD_REQUEST,
                    "offset: Your pagination token is invalid",
                );
            }
        },
    };
    let opt_fields = q.get("opt_fields").map(String::as_str);
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| project_fields(t, opt_fields))
        .collect();
    let end = start + page.len();
    let next_page = if end < all.len() {
        let offset = encode_offset(&parent, end);
        let path = format!("/tasks/{parent}/subtasks?limit={limit}&offset={offset}");
        json!({"offset": offset, "path": path, "uri": path})
    } else {
        Value::Null
    };
    axum::Json(json!({"data": page, "next_page": next_page})).into_response()
}
