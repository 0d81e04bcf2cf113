//! The fake Asana's users and agents (AI teammates):
//!
//! - `GET /users/me` (the token's user, [`super::API_USER`]) and `GET /users/{gid}` answer
//!   `{gid, resource_type: "user", name, email}` (the fields `opt_fields` names beyond the
//!   compact `gid`, `resource_type`, `name`); an unknown gid, an agent's included, is a
//!   `404`, as Asana answers for a gid that is no user;
//! - `GET /agents/{gid}` and `GET /workspaces/{ws}/agents` answer agents (`{gid,
//!   resource_type: "agent", resource_subtype: "asana_teammate", name, description,
//!   workspace}`) **only** when the request carries `Asana-Enable: ai_teammate_actors`
//!   (Asana's early access); without it they answer `400` naming the feature to enable, the
//!   fake's wording of Asana's refusal of a feature not opted into;
//! - [`FakeAsana::add_user`] and [`FakeAsana::add_agent`] add them;
//!   [`FakeAsana::change_task_as`] changes a task as a user or an agent, whose events name it
//!   as their `user` (`resource_type: "agent"` for an agent, as Asana's next phase of the
//!   rollout sends in webhook payloads).
//!
//! The fake starts with two users: [`super::API_USER`] ("Ordonis API",
//! `api@ordonis.example`) and [`super::HUMAN_USER`] ("Greg", `greg@example.com`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::create::{AI_TEAMMATES, agents_enabled};
use super::{API_USER, FakeAsana, Inner, data, errors, lock, task_events};

/// The workspace the fake's users and agents belong to.
pub const WORKSPACE: &str = "1100000000000001";

/// The fields an answer shows without `opt_fields` (Asana's compact record).
const COMPACT: [&str; 3] = ["gid", "resource_type", "name"];

fn shown(v: &Value, q: &HashMap<String, String>) -> Value {
    let asked: Vec<&str> = q
        .get("opt_fields")
        .map(|f| f.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        if COMPACT.contains(&k.as_str()) || asked.contains(&k.as_str()) {
            out.insert(k.clone(), val.clone());
        }
    }
    Value::Object(out)
}

/// A user record.
pub(super) fn user(gid: &str, name: &str, email: &str) -> Value {
    json!({"gid": gid, "resource_type": "user", "name": name, "email": email,
           "workspaces": [{"gid": WORKSPACE, "resource_type": "workspace"}]})
}

fn feature_refusal() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        &format!(
            "Agents are in early access: this request must opt in with the header \
             Asana-Enable: {AI_TEAMMATES}"
        ),
    )
}

/// `GET /users/{gid}` (`me` is the token's user).
pub(super) async fn get_user(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let gid = if gid == "me" {
        API_USER.to_owned()
    } else {
        gid
    };
    match lock(&s.users).get(&gid) {
        Some(u) => data(StatusCode::OK, shown(u, &q)),
        None => errors(StatusCode::NOT_FOUND, "user: Unknown object"),
    }
}

/// `GET /agents/{gid}`.
pub(super) async fn get_agent(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !agents_enabled(&headers) {
        return feature_refusal();
    }
    match lock(&s.agents).get(&gid) {
        Some(a) => data(StatusCode::OK, a.clone()),
        None => errors(StatusCode::NOT_FOUND, "agent: Unknown object"),
    }
}

/// `GET /workspaces/{ws}/agents` (one page: the fake's workspaces hold few agents).
pub(super) async fn list_agents(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(ws): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !agents_enabled(&headers) {
        return feature_refusal();
    }
    if ws != WORKSPACE {
        return errors(StatusCode::NOT_FOUND, "workspace: Unknown object");
    }
    let list: Vec<Value> = lock(&s.agents)
        .values()
        .map(|a| json!({"gid": a["gid"], "resource_type": "agent", "name": a["name"]}))
        .collect();
    Json(json!({"data": list, "next_page": null})).into_response()
}

impl Inner {
    /// `{gid, resource_type}` of a user or an agent, as events name their actor.
    fn actor_ref(&self, gid: &str) -> Value {
        let kind = if lock(&self.agents).contains_key(gid) {
            "agent"
        } else {
            "user"
        };
        json!({"gid": gid, "resource_type": kind})
    }
}

impl FakeAsana {
    /// Adds a user with a name and e-mail; its gid.
    pub fn add_user(&self, name: &str, email: &str) -> String {
        let gid = self.inner.gid();
        lock(&self.inner.users).insert(gid.clone(), user(&gid, name, email));
        gid
    }

    /// Adds an agent (an AI teammate) with a name; its gid.
    pub fn add_agent(&self, name: &str) -> String {
        let gid = self.inner.gid();
        let agent = json!({
            "gid": gid, "resource_type": "agent", "resource_subtype": "asana_teammate",
            "name": name, "description": format!("{name}, an AI teammate"),
            "behavior_guidance": null,
            "workspace": {"gid": WORKSPACE, "resource_type": "workspace", "name": "Fake workspace"},
            "photo": null,
        });
        lock(&self.inner.agents).insert(gid.clone(), agent);
        gid
    }

    /// Changes a task as `actor` (a user's or an agent's gid) would in Asana
    /// ([`FakeAsana::change_task`]'s `changes`) and sends one event per changed field, whose
    /// `user` is the actor (`resource_type: "agent"` for an agent). `None` when the task does
    /// not exist.
    pub async fn change_task_as(&self, gid: &str, actor: &str, changes: Value) -> Option<usize> {
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
        let mut events = task_events(&self.inner.stamp(), gid, actor, "changed", &changed);
        let who = self.inner.actor_ref(actor);
        for e in &mut events {
            e["user"] = who.clone();
        }
        Some(self.inner.announce(gid, events, true).await)
    }
}
