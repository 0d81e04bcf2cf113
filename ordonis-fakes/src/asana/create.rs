//! The fake Asana's task creation: `POST /tasks` and `POST /tasks/{gid}/subtasks`, and
//! `GET /tasks/external:<gid>` (the task carrying that external gid), as strict as Asana:
//!
//! - the body is `{"data": {...}}` with `name`, `html_notes` (checked as rich text),
//!   `notes`, `assignee`, `due_on`, `completed`, `projects` (gids), `parent` (`POST /tasks`
//!   only; the subtask route takes it from the path), `workspace` and `external: {gid,
//!   data}`. `POST /tasks` needs `projects`, `parent` or `workspace` (`400 workspace:
//!   Missing input` otherwise), as Asana does;
//! - an unknown project or parent is a `404` (`projects: Unknown object`, `parent: Unknown
//!   object`); a project the token may not add tasks to ([`FakeAsana::deny_create_in`]) or a
//!   hidden parent ([`FakeAsana::hide_task`]) a `403` with Asana's `{"errors": [{"message":
//!   …}]}`;
//! - `assignee` is a known user's gid or e-mail ([`FakeAsana::add_user`]), or an agent's gid
//!   ([`FakeAsana::add_agent`]) **only** when the request carries `Asana-Enable:
//!   ai_teammate_actors` (Asana's early access: agents are accepted only as an assignee, and
//!   only with the opt-in); otherwise `400 assignee: Not a recognized ID: …`;
//! - an external gid already carried by another task is a `400` (Asana keeps them unique per
//!   app); a `gid` over 1,024 characters or `data` over 32,768 is a `400`;
//! - the task gets `created_by` (the token's user, [`super::API_USER`]), `created_at` and
//!   `modified_at` on the fake clock, and a `permalink_url`; the answer is `201 {"data":
//!   task}` (`html_notes` only when `opt_fields` asks, as for `GET`);
//! - the events real Asana sends for a new task: `added` with the task as the resource and
//!   each project as the `parent` (a subtask: the parent task), by the token's user,
//!   recorded in the projects' streams at once and delivered in the background as an echo
//!   (off with [`FakeAsana::set_echo`]), like a push's;
//! - [`FakeAsana::lose_next_create_answer`]: the task is made (and its events sent), then the
//!   answer is a `504` as if it were lost on the way back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{API_USER, FakeAsana, Inner, data, errors, lock, rich, tasks::without_rich_text};

/// The opt-in header value that lets agents (AI teammates) be read and assigned.
pub const AI_TEAMMATES: &str = "ai_teammate_actors";

/// Whether a request opted in to Asana's agent actors (`Asana-Enable: ai_teammate_actors`,
/// possibly among other comma-separated features).
pub(super) fn agents_enabled(headers: &HeaderMap) -> bool {
    headers.get_all("asana-enable").iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|f| f.trim() == AI_TEAMMATES))
    })
}

impl Inner {
    /// The gid of the task carrying an external gid.
    pub(super) fn by_external(&self, external: &str) -> Option<String> {
        lock(&self.tasks)
            .iter()
            .find(|(_, t)| t["external"]["gid"].as_str() == Some(external))
            .map(|(g, _)| g.clone())
    }

    /// Resolves a path's task id: a gid, or `external:<gid>`.
    pub(super) fn resolve_task(&self, id: &str) -> Option<String> {
        match id.strip_prefix("external:") {
            Some(ext) => self.by_external(ext),
            None => Some(id.to_owned()),
        }
    }

    /// The assignee a create names, as the task keeps it, or the 400 message.
    fn assignee_ref(&self, v: &Value, agents_on: bool) -> Result<Value, String> {
        let id = match v {
            Value::Null => return Ok(Value::Null),
            Value::String(s) => s.trim(),
            _ => return Err("assignee: must be a user gid or e-mail".to_owned()),
        };
        let users = lock(&self.users);
        let user = users
            .get(id)
            .or_else(|| users.values().find(|u| u["email"].as_str() == Some(id)));
        if let Some(u) = user {
            return Ok(json!({"gid": u["gid"], "resource_type": "user", "name": u["name"]}));
        }
        if agents_on && let Some(a) = lock(&self.agents).get(id) {
            return Ok(json!({"gid": a["gid"], "resource_type": "agent", "name": a["name"]}));
        }
        Err(format!("assignee: Not a recognized ID: {id}"))
    }
}

/// Whether `v` is a `YYYY-MM-DD` calendar date.
fn is_date(v: &str) -> bool {
    let mut parts = v.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i32>(), m.parse::<u8>(), d.parse::<u8>()) else {
        return false;
    };
    time::Month::try_from(m).is_ok_and(|m| time::Date::from_calendar_date(y, m, d).is_ok())
}

fn check_external(ext: &Value) -> Result<Value, String> {
    let Some(o) = ext.as_object() else {
        return Err("external: must be an object".to_owned());
    };
    let gid = o.get("gid").and_then(Value::as_str).unwrap_or_default();
    if gid.is_empty() || gid.len() > 1024 {
        return Err("external.gid: must be 1 to 1024 characters".to_owned());
    }
    let data = o.get("data").and_then(Value::as_str);
    if data.is_some_and(|d| d.len() > 32_768) {
        return Err("external.data: must be at most 32768 characters".to_owned());
    }
    Ok(json!({"gid": gid, "data": data}))
}

/// `POST /tasks`.
pub(super) async fn create_task(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    create(&s, &headers, &q, None, &body)
}

/// `POST /tasks/{gid}/subtasks`.
pub(super) async fn create_subtask(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(parent): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    create(&s, &headers, &q, Some(parent), &body)
}

fn create(
    s: &Arc<Inner>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    path_parent: Option<String>,
    body: &Bytes,
) -> Response {
    if !s.authorized(headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some(d) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_object).cloned())
    else {
        return errors(StatusCode::BAD_REQUEST, "data: Missing input");
    };
    match build(s, headers, path_parent, &d) {
        Ok(task) => {
            let gid = task["gid"].as_str().unwrap_or_default().to_owned();
            lock(&s.tasks).insert(gid.clone(), task.clone());
            s.echo_created(&gid, &task);
            if s.lose_create_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return errors(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
            }
            data(StatusCode::CREATED, without_rich_text(&task, q))
        }
        Err((status, message)) => errors(status, &message),
    }
}

type Refusal = (StatusCode, String);

fn bad(m: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, m.into())
}

/// The new task from a create's `data`, or Asana's refusal.
fn build(
    s: &Inner,
    headers: &HeaderMap,
    path_parent: Option<String>,
    d: &Map<String, Value>,
) -> Result<Value, Refusal> {
    let parent = match path_parent {
        Some(p) => Some(p),
        None => match d.get("parent") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(_) => return Err(bad("parent: must be a task gid")),
        },
    };
    let projects: Vec<String> = match d.get("projects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| p.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("projects: must be a list of project gids"))?,
        Some(_) => return Err(bad("projects: must be a list of project gids")),
    };
    if parent.is_none() && projects.is_empty() && !d.contains_key("workspace") {
        return Err(bad("workspace: Missing input"));
    }
    let mut memberships = Vec::new();
    {
        let streams = lock(&s.streams);
        for p in &projects {
            let Some(name) = streams.project_name(p) else {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!("projects: Unknown object: {p}"),
                ));
            };
            if lock(&s.create_denied).contains(p) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "You do not have permission to add tasks to project {p}. Ask the \
                         project's owner for edit access."
                    ),
                ));
            }
            memberships
                .push(json!({"project": {"gid": p, "resource_type": "project", "name": name}}));
        }
    }
    let parent_ref = match &parent {
        None => Value::Null,
        Some(p) => {
            if lock(&s.hidden).contains(p) {
                return Err((
                    StatusCode::FORBIDDEN,
                    "You do not have access to the requested object.".to_owned(),
                ));
            }
            let name = lock(&s.tasks).get(p).map(|t| t["name"].clone());
            match name {
                Some(name) => json!({"gid": p, "resource_type": "task", "name": name}),
                None => {
                    return Err((
                        StatusCode::NOT_FOUND,
                        format!("parent: Unknown object: {p}"),
                    ));
                }
            }
        }
    };
    let (notes, html) = match (d.get("html_notes"), d.get("notes")) {
        (Some(_), Some(_)) => return Err(bad("notes, html_notes: only one of these may be given")),
        (Some(h), None) => {
            let h = h
                .as_str()
                .ok_or_else(|| bad("html_notes: must be a string"))?;
            (rich::check(h).map_err(bad)?, h.to_owned())
        }
        (None, Some(n)) => {
            let n = n.as_str().unwrap_or_default();
            (n.to_owned(), rich::from_notes(n))
        }
        (None, None) => (String::new(), "<body></body>".to_owned()),
    };
    let assignee = match d.get("assignee") {
        None => Value::Null,
        Some(a) => s.assignee_ref(a, agents_enabled(headers)).map_err(bad)?,
    };
    let due_on = match d.get("due_on") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(v)) if is_date(v) => Value::String(v.clone()),
        Some(v) => return Err(bad(format!("due_on: Not a valid date: {v}"))),
    };
    let completed = match d.get("completed") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("completed: must be true or false")),
    };
    let external = match d.get("external") {
        None | Some(Value::Null) => Value::Null,
        Some(e) => {
            let e = check_external(e).map_err(bad)?;
            if let Some(g) = e["gid"].as_str()
                && s.by_external(g).is_some()
            {
                return Err(bad(format!(
                    "external.gid: {g} is already used by another task"
                )));
            }
            e
        }
    };
    let name = match d.get("name") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(bad("name: must be a string")),
    };
    let gid = s.gid();
    let now = s.stamp();
    let api_user = lock(&s.users).get(API_USER).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "gid": gid, "resource_type": "task", "resource_subtype": "default_task",
        "name": name, "notes": notes, "html_notes": html, "completed": completed,
        "completed_at": if completed { Value::String(now.clone()) } else { Value::Null },
        "assignee": assignee, "due_on": due_on, "due_at": null, "start_on": null,
        "custom_fields": [], "memberships": memberships, "parent": parent_ref,
        "external": external,
        "created_by": {"gid": API_USER, "resource_type": "user", "name": api_user["name"]},
        "created_at": now, "modified_at": now,
        "permalink_url": format!("https://app.asana.com/0/0/{gid}"),
    }))
}

impl Inner {
    /// The events of a new task (see the module docs): recorded at once, delivered in the
    /// background when echoes are on.
    fn echo_created(self: &Arc<Self>, gid: &str, task: &Value) {
        let at = self.stamp();
        let event = |parent: Value| {
            json!({
                "user": {"gid": API_USER, "resource_type": "user"},
                "created_at": at,
                "action": "added",
                "resource": {"gid": gid, "resource_type": "task", "resource_subtype": "default_task"},
                "parent": parent,
            })
        };
        let mut events: Vec<Value> = task["memberships"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["project"]["gid"].as_str())
            .map(|p| event(json!({"gid": p, "resource_type": "project"})))
            .collect();
        if let Some(p) = task["parent"]["gid"].as_str() {
            events.push(event(json!({"gid": p, "resource_type": "task"})));
        }
        let projects = self.projects_of(gid);
        self.record(&projects, &events);
        if self.echo.load(Ordering::SeqCst) {
            let inner = self.clone();
            self.echoes.spawn(async move {
                inner.deliver_to(Some(&projects), events).await;
            });
        }
    }
}

impl FakeAsana {
    /// The token may no longer add tasks to `project`: a create in it answers `403`.
    pub fn deny_create_in(&self, project: &str) {
        lock(&self.inner.create_denied).insert(project.to_owned());
    }

    /// The next `n` task creates make their task, then answer `504` as if the answer were
    /// lost on the way back (a client must look for the task before creating again).
    pub fn lose_next_create_answer(&self, n: u64) {
        self.inner.lose_create_answers.store(n, Ordering::SeqCst);
    }

    /// How many tasks carry the external gid `gid` (Asana keeps it unique: 0 or 1).
    pub fn tasks_with_external(&self, gid: &str) -> usize {
        lock(&self.inner.tasks)
            .values()
            .filter(|t| t["external"]["gid"].as_str() == Some(gid))
            .count()
    }

    /// How many tasks are named `name` (to count duplicates of a create).
    pub fn tasks_named(&self, name: &str) -> usize {
        lock(&self.inner.tasks)
            .values()
            .filter(|t| t["name"].as_str() == Some(name))
            .count()
    }
}
