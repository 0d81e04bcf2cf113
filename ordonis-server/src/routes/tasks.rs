//! `GET /api/tasks?workspace_id=`, `GET`/`PATCH /api/tasks/{id}`, `GET /api/tasks/{id}/ledger`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::StoreExt;
use ordonis_core::{
    Actor, ActorKind, Assignee, FieldPatch, FieldValue, Principal, Priority, PriorityLevel, Status,
    StatusCategory, Task, TaskId, WorkspaceId,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::json;
use crate::errors::{ApiError, ApiJson, ApiQuery};
use crate::state::AppState;

/// `?workspace_id=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    workspace_id: Option<String>,
}

/// A workspace's tasks.
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = q
        .workspace_id
        .ok_or_else(|| ApiError::bad_request("workspace_id is required"))?;
    let ws = WorkspaceId::new(ws)?;
    let tasks = s.store.all_tasks(&ws).await?;
    Ok(Json(
        json!({ "tasks": tasks.iter().map(json::task).collect::<Vec<_>>() }),
    ))
}

/// Finds a task by id alone (404 when unknown or not a UUID).
pub async fn find(s: &AppState, id: &str) -> Result<Task, ApiError> {
    let not_found = || ApiError::not_found(format!("task {id}"));
    let tid: TaskId = id.parse().map_err(|_| not_found())?;
    s.store.task(tid).await?.ok_or_else(not_found)
}

/// One task.
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json::task(&find(&s, &id).await?)))
}

/// A task's VERA entries, oldest first.
pub async fn ledger(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let t = find(&s, &id).await?;
    let entries = s.store.task_ledger(&t.workspace_id, t.id).await?;
    Ok(Json(json!({
        "task_id": t.id.to_string(),
        "workspace_id": t.workspace_id.as_str(),
        "entries": entries.iter().map(json::entry).collect::<Vec<_>>(),
    })))
}

fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One or several principals.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Principals {
    /// One.
    One(Principal),
    /// A chain, immediate principal first.
    Many(Vec<Principal>),
}

/// Who makes the change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorIn {
    kind: ActorKind,
    id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    on_behalf_of: Option<Principals>,
}

/// Longest `actor.id` and `actor.display_name`, in characters.
pub const ACTOR_FIELD_MAX: usize = 256;

impl ActorIn {
    /// The core actor (internal, further validated by the engine); 400 when `id` or
    /// `display_name` is longer than [`ACTOR_FIELD_MAX`] characters.
    pub fn into_actor(self) -> Result<Actor, ApiError> {
        let too_long = |what: &str, v: &str| {
            (v.chars().count() > ACTOR_FIELD_MAX).then(|| {
                ApiError::bad_request(format!(
                    "{what} is longer than {ACTOR_FIELD_MAX} characters"
                ))
            })
        };
        if let Some(e) = too_long("actor.id", &self.id).or_else(|| {
            self.display_name
                .as_deref()
                .and_then(|d| too_long("actor.display_name", d))
        }) {
            return Err(e);
        }
        Ok(Actor {
            kind: self.kind,
            id: self.id,
            display_name: self.display_name,
            provider: "internal".to_owned(),
            account: None,
            on_behalf_of: match self.on_behalf_of {
                None => Vec::new(),
                Some(Principals::One(p)) => vec![p],
                Some(Principals::Many(v)) => v,
            },
        })
    }
}

/// A status: a category, a name, or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusIn {
    #[serde(default)]
    category: Option<StatusCategory>,
    #[serde(default)]
    name: Option<String>,
}

/// A priority: a level and an optional name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityIn {
    level: PriorityLevel,
    #[serde(default)]
    name: Option<String>,
}

/// The fields to change (absent: unchanged; `null`: cleared where a field may be empty).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsIn {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<StatusIn>,
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<Assignee>>,
    #[serde(default, deserialize_with = "present")]
    priority: Option<Option<PriorityIn>>,
    #[serde(default, deserialize_with = "present")]
    due_date: Option<Option<String>>,
}

/// The PATCH body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchIn {
    actor: ActorIn,
    fields: FieldsIn,
}

/// The category a status name suggests (for a status given by name only).
pub(crate) fn category_of(name: &str) -> StatusCategory {
    let n = name.trim().to_ascii_lowercase();
    if ["done", "closed", "resolved", "complete", "completed"].contains(&n.as_str()) {
        StatusCategory::Done
    } else if n.contains("progress") || n == "doing" || n.contains("review") {
        StatusCategory::InProgress
    } else {
        StatusCategory::Todo
    }
}

impl FieldsIn {
    /// The core patch, or what was wrong.
    pub fn into_patch(self) -> Result<FieldPatch, ApiError> {
        let mut p = FieldPatch::new();
        if let Some(t) = self.title {
            if t.trim().is_empty() {
                return Err(ApiError::bad_request("fields.title must not be empty"));
            }
            p.set(FieldValue::Title(t));
        }
        if let Some(d) = self.description {
            p.set(FieldValue::Description(d));
        }
        if let Some(st) = self.status {
            let name = st.name.unwrap_or_default();
            let category = match st.category {
                Some(c) => c,
                None if !name.trim().is_empty() => category_of(&name),
                None => {
                    return Err(ApiError::bad_request(
                        "fields.status needs a category or a name",
                    ));
                }
            };
            p.set(FieldValue::Status(Status::new(category, name)));
        }
        if let Some(a) = self.assignee {
            if a.as_ref().is_some_and(|a| a.account_id.trim().is_empty()) {
                return Err(ApiError::bad_request(
                    "fields.assignee.account_id must not be empty",
                ));
            }
            p.set(FieldValue::Assignee(a));
        }
        if let Some(pr) = self.priority {
            p.set(FieldValue::Priority(pr.map(|pr| Priority {
                level: pr.level,
                name: pr.name.unwrap_or_default(),
            })));
        }
        if let Some(d) = self.due_date {
            let d = match d {
                None => None,
                Some(s) => Some(parse_date(&s).ok_or_else(|| {
                    ApiError::bad_request("fields.due_date must be YYYY-MM-DD or null")
                })?),
            };
            p.set(FieldValue::DueDate(d));
        }
        if p.is_empty() {
            return Err(ApiError::bad_request("fields must name at least one field"));
        }
        Ok(p)
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt).ok()
}

/// Applies a change as an actor through the engine; 202 with what happened.
pub async fn apply(
    s: &AppState,
    task: &Task,
    actor: &Actor,
    patch: &FieldPatch,
) -> Result<Value, ApiError> {
    let receipt = s
        .engine
        .change_task(&task.workspace_id, task.id, actor, patch)
        .await?;
    if receipt.push_queued {
        s.wake.notify_waiters();
    }
    Ok(json!({
        "task_id": task.id.to_string(),
        "action_id": receipt.action.to_string(),
        "ledger_entries": receipt.entries.len(),
        "push_queued": receipt.push_queued,
        // Values the provider can never hold, refused at once (also in the ledger).
        "refused": receipt
            .refused
            .iter()
            .map(|(f, reason)| json!({"field": f.as_str(), "reason": reason}))
            .collect::<Vec<_>>(),
    }))
}

/// Changes a task's fields as an actor: through the field policy, the ledger and the outbox.
pub async fn change(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchIn>,
) -> Result<Response, ApiError> {
    let task = find(&s, &id).await?;
    if task.deleted {
        return Err(ApiError::conflict(format!(
            "task {id} was deleted in the provider; it cannot be changed"
        )));
    }
    if task.out_of_scope {
        return Err(ApiError::conflict(format!(
            "task {id} is out of its integration's scope (its ledger says why); it cannot be \
             changed until it is back in scope"
        )));
    }
    let actor = body.actor.into_actor()?;
    let patch = body.fields.into_patch()?;
    let out = apply(&s, &task, &actor, &patch).await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}
