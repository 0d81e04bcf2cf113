//! `GET /api/tasks?workspace_id=`, `GET`/`PATCH /api/tasks/{id}`, `GET /api/tasks/{id}/ledger`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::{
    Actor, ActorKind, Assignee, AssigneeFilter, FieldPatch, FieldValue, Principal, Priority,
    PriorityLevel, Status, StatusCategory, SyncState, Task, TaskCursor, TaskId, TaskQuery,
    TaskSort, WorkspaceId,
};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::json;
use crate::errors::{ApiError, ApiJson, ApiQuery};
use crate::state::AppState;

/// `?workspace_id=&limit=&cursor=&status=&assignee=&integration=&sync_state=&updated_since=&q=&sort=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    workspace_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    integration: Option<String>,
    sync_state: Option<String>,
    updated_since: Option<String>,
    q: Option<String>,
    sort: Option<String>,
}

fn given(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.trim().is_empty())
}

impl ListQuery {
    /// The store query these parameters ask for; `400` for a bad one.
    fn into_query(self) -> Result<TaskQuery, ApiError> {
        let ws = given(self.workspace_id)
            .ok_or_else(|| ApiError::bad_request("workspace_id is required"))?;
        let mut q = TaskQuery::new(WorkspaceId::new(ws)?);
        if let Some(l) = given(self.limit) {
            q.limit = l
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=TaskQuery::MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be 1 to {}, not {l:?}",
                        TaskQuery::MAX_LIMIT
                    ))
                })?;
        }
        q.status = given(self.status);
        q.assignee = given(self.assignee).map(|a| AssigneeFilter::parse(a.trim()));
        if let Some(i) = given(self.integration) {
            q.integration =
                Some(i.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("integration {i:?} is not an id"))
                })?);
        }
        if let Some(st) = given(self.sync_state) {
            q.sync_state = Some(SyncState::parse(st.trim()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "sync_state must be one of in_sync, push_pending, conflict, error, \
                     out_of_scope, not {st:?}"
                ))
            })?);
        }
        if let Some(t) = given(self.updated_since) {
            q.updated_since = Some(
                time::OffsetDateTime::parse(
                    t.trim(),
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| {
                    ApiError::bad_request(format!("updated_since {t:?} is not an RFC 3339 time"))
                })?,
            );
        }
        q.search = given(self.q);
        if let Some(sort) = given(self.sort) {
            q.sort = TaskSort::parse(sort.trim()).ok_or_else(|| {
                ApiError::bad_request(format!("sort must be id or updated, not {sort:?}"))
            })?;
        }
        if let Some(c) = given(self.cursor) {
            q.cursor = Some(TaskCursor::parse(&c)?);
        }
        Ok(q)
    }
}

/// A page of a workspace's tasks: `{"tasks": [...], "next_cursor": "…" | null}`, each task
/// with its stored `sync_state`.
///
/// The cursor contract: `next_cursor` is opaque; pass it back as `cursor` with the same
/// filters and `sort` to get the next page, and stop when it is `null`. The order is stable
/// (`sort=id`, the default: by task id, so a walk lists every task that exists throughout it
/// exactly once, new tasks last; `sort=updated`: most recently changed first, where a task
/// changed during the walk moves ahead and is not repeated). A cursor stays valid while the
/// data changes. `400` for a cursor that is not one, or that was made under other filters
/// or another sort, for `limit` outside 1–1000 (default 100), and for a bad filter.
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let query = q.into_query()?;
    let page = s.store.query_tasks(&query).await?;
    let tasks: Vec<Value> = page
        .tasks
        .iter()
        .map(|t| {
            let mut v = json::task(&t.task);
            if let Some(o) = v.as_object_mut() {
                o.insert("sync_state".to_owned(), json!(t.sync_state.as_str()));
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "tasks": tasks,
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
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

/// `?limit=&cursor=` of a task's ledger (see [`super::paging`]).
#[derive(Debug, Deserialize)]
pub struct LedgerQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of a task's VERA entries, oldest first, keyed by ledger index.
pub async fn ledger(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LedgerQuery>,
) -> Result<Json<Value>, ApiError> {
    use super::paging;
    const KIND: &str = "task-ledger";
    let after = paging::parse_index_cursor(KIND, q.cursor.as_deref())?;
    let limit = paging::limit(q.limit);
    let t = find(&s, &id).await?;
    // One entry more than the page: whether a next page exists.
    let rows = s
        .store
        .task_ledger_page(&t.workspace_id, t.id, after, limit + 1)
        .await?;
    let page = paging::Page::of(rows, limit, |e| paging::index_cursor(KIND, e.idx));
    Ok(Json(json!({
        "task_id": t.id.to_string(),
        "workspace_id": t.workspace_id.as_str(),
        "entries": page.items.iter().map(json::entry).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
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
    assignee: Option<Option<AssigneeIn>>,
    #[serde(default, deserialize_with = "present")]
    priority: Option<Option<PriorityIn>>,
    #[serde(default, deserialize_with = "present")]
    due_date: Option<Option<String>>,
}

/// An assignee: a provider account, or a principal of the people directory
/// (`{"principal": "usr_42"}`), resolved to the principal's account in the task's provider.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum AssigneeIn {
    /// A principal.
    Principal {
        /// Its id.
        principal: String,
    },
    /// A provider account.
    Account(Assignee),
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
        let mut principal_given = false;
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
            match a {
                // Resolved by the caller (`assignee_principal`) against the directory.
                Some(AssigneeIn::Principal { principal }) => {
                    if principal.trim().is_empty() {
                        return Err(ApiError::bad_request(
                            "fields.assignee.principal must not be empty",
                        ));
                    }
                    principal_given = true;
                }
                Some(AssigneeIn::Account(a)) if a.account_id.trim().is_empty() => {
                    return Err(ApiError::bad_request(
                        "fields.assignee.account_id must not be empty",
                    ));
                }
                Some(AssigneeIn::Account(a)) => p.set(FieldValue::Assignee(Some(a))),
                None => p.set(FieldValue::Assignee(None)),
            }
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
        if p.is_empty() && !principal_given {
            return Err(ApiError::bad_request("fields must name at least one field"));
        }
        Ok(p)
    }

    /// The principal an assignee names (`{"principal": "usr_42"}`), if it names one.
    pub fn assignee_principal(&self) -> Option<String> {
        match &self.assignee {
            Some(Some(AssigneeIn::Principal { principal })) => Some(principal.trim().to_owned()),
            _ => None,
        }
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
    let principal = body.fields.assignee_principal();
    let mut patch = body.fields.into_patch()?;
    if let Some(principal) = principal {
        // Refused here, with the reason, when the principal has no account in the task's
        // provider: never pushed as someone else.
        let assignee = s
            .engine
            .assignee_for(&task.workspace_id, task.id, &principal)
            .await?;
        patch.set(FieldValue::Assignee(Some(assignee)));
    }
    let out = apply(&s, &task, &actor, &patch).await?;
    Ok((StatusCode::ACCEPTED, Json(out)).into_response())
}

/// `link` of a create: where to create the task's issue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLinkIn {
    integration_id: String,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    issue_type: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

/// The `POST /api/tasks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIn {
    workspace_id: String,
    actor: ActorIn,
    fields: FieldsIn,
    #[serde(default)]
    link: Option<NewLinkIn>,
}

/// An integration id from a body or a path (404 when not a UUID: no such integration).
fn integration_id(id: &str) -> Result<ordonis_core::IntegrationId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("integration {id}")))
}

/// Creates a task as an actor; with `link`, its issue in the provider too (by a worker,
/// exactly once). 202 `{task_id, ledger_entries, create_queued}`.
pub async fn create(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<CreateIn>,
) -> Result<Response, ApiError> {
    let ws = WorkspaceId::new(body.workspace_id)?;
    let actor = body.actor.into_actor()?;
    if body
        .fields
        .title
        .as_deref()
        .is_none_or(|t| t.trim().is_empty())
    {
        return Err(ApiError::bad_request("fields.title is required"));
    }
    let link = match body.link {
        Some(l) => Some(ordonis_core::NewLink {
            integration_id: integration_id(&l.integration_id)?,
            project: l.project,
            issue_type: l.issue_type,
            parent: l.parent,
        }),
        None => None,
    };
    // An assignee given as a principal needs the task's integration: resolved after the
    // create, like a PATCH (the create carries the rest).
    let principal = body.fields.assignee_principal();
    let patch = body.fields.into_patch()?;
    if principal.is_some() && link.is_none() {
        return Err(ApiError::bad_request(
            "fields.assignee.principal needs a link: a CollabHub-only task has no provider account to assign",
        ));
    }
    let receipt = s.engine.create_task(&ws, &actor, &patch, link).await?;
    let mut entries = receipt.entries.len();
    if let Some(principal) = principal {
        let assignee = s
            .engine
            .assignee_for(&ws, receipt.task_id, &principal)
            .await?;
        let mut p = FieldPatch::new();
        p.set(FieldValue::Assignee(Some(assignee)));
        entries += s
            .engine
            .change_task(&ws, receipt.task_id, &actor, &p)
            .await?
            .entries
            .len();
    }
    if receipt.create_queued {
        s.wake.notify_waiters();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "task_id": receipt.task_id.to_string(),
            "ledger_entries": entries,
            "create_queued": receipt.create_queued,
        })),
    )
        .into_response())
}

/// The `POST /api/tasks/{id}/links` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkIn {
    actor: ActorIn,
    integration_id: String,
    external_id: String,
}

/// Links a task to an existing issue; 200 with the task.
pub async fn link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<LinkIn>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let integration = integration_id(&body.integration_id)?;
    let task = s
        .engine
        .link_task(
            &task.workspace_id,
            task.id,
            &actor,
            integration,
            &body.external_id,
        )
        .await?;
    s.wake.notify_waiters();
    Ok(Json(json::task(&task)))
}

/// The `DELETE /api/tasks/{id}/links/{integration_id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlinkIn {
    actor: ActorIn,
}

/// Unlinks a task from its issue in an integration; 200 with the task.
pub async fn unlink(
    State(s): State<AppState>,
    Path((id, integration)): Path<(String, String)>,
    ApiJson(body): ApiJson<UnlinkIn>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&s, &id).await?;
    let actor = body.actor.into_actor()?;
    let integration = integration_id(&integration)?;
    let task = s
        .engine
        .unlink_task(&task.workspace_id, task.id, &actor, integration)
        .await?;
    Ok(Json(json::task(&task)))
}
