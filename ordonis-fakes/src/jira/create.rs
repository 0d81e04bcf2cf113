//! The fake Jira's issue creation and accounts: `POST /rest/api/3/issue`, the create
//! metadata (`GET /rest/api/3/issue/createmeta/{project}/issuetypes` and
//! `…/issuetypes/{issueTypeId}`), issue properties (`GET
//! /rest/api/3/issue/{id}/properties/{key}`) and `GET /rest/api/3/user?accountId=`.
//!
//! As strict as Jira where a create depends on it: the project must exist
//! ([`FakeJira::add_project`]) and let the account create in it (else a 403,
//! [`FakeJira::deny_create`]); the issue type must be one of the project's; a sub-task needs
//! a `parent` that exists; `summary` and the fields [`FakeJira::require_create_field`] made
//! required must be given (else a 400 naming each: `{"errors": {"customfield_10050": "Team
//! is required."}}`); a description must be ADF, a priority one of the site's. The issue is
//! made in the workflow's first status, reported by the calling account (the API account),
//! with `created` and `updated` now and its `properties` stored; `jira:issue_created` is
//! echoed as other REST changes are. [`FakeJira::lose_next_create_answer`] makes a create
//! whose answer is lost after the issue is made.
//!
//! [`FakeJira::add_project`]: super::FakeJira::add_project
//! [`FakeJira::deny_create`]: super::FakeJira::deny_create
//! [`FakeJira::require_create_field`]: super::FakeJira::require_create_field
//! [`FakeJira::lose_next_create_answer`]: super::FakeJira::lose_next_create_answer

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::site::{
    API_ACCOUNT, FakeIssueType, FakeProject, PRIORITIES, Site, authorized, error, jira_time, lock,
    now_ms, write_fault,
};
use super::workflow::status_value;

/// Jira's cap on a create-metadata page.
const META_MAX_RESULTS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    #[serde(default, rename = "startAt")]
    start_at: Option<usize>,
    #[serde(default, rename = "maxResults")]
    max_results: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct UserQuery {
    #[serde(default, rename = "accountId")]
    account_id: Option<String>,
}

impl Site {
    /// A project by key or id.
    pub(super) fn project(&self, key_or_id: &str) -> Option<FakeProject> {
        lock(&self.projects)
            .values()
            .find(|p| p.key.eq_ignore_ascii_case(key_or_id) || p.id == key_or_id)
            .cloned()
    }
}

fn field_errors(errors: Map<String, Value>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [], "errors": errors})),
    )
        .into_response()
}

/// One page (`startAt`, `maxResults`, at most 200) of `all` under `key`.
fn page(all: Vec<Value>, q: &PageQuery, key: &str) -> Response {
    let max = q.max_results.unwrap_or(50);
    if max > META_MAX_RESULTS {
        return error(
            StatusCode::BAD_REQUEST,
            "Parameter 'maxResults' must not exceed the limit '200'",
        );
    }
    let start = q.start_at.unwrap_or(0);
    let total = all.len();
    let items: Vec<Value> = all.into_iter().skip(start).take(max.max(1)).collect();
    let mut v = json!({"startAt": start, "maxResults": max, "total": total});
    v[key] = Value::Array(items);
    Json(v).into_response()
}

fn project_missing() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "No project could be found with key or id, or you do not have permission to view it.",
    )
}

/// `GET /rest/api/3/issue/createmeta/{project}/issuetypes`.
pub(super) async fn meta_issue_types(
    State(s): State<Arc<Site>>,
    Path(project): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    s.log(format!(
        "GET /rest/api/3/issue/createmeta/{project}/issuetypes"
    ));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(p) = s.project(&project) else {
        return project_missing();
    };
    let types = p
        .issue_types
        .iter()
        .map(|t| {
            json!({"id": t.id, "name": t.name, "subtask": t.subtask, "description": "",
                   "self": format!("{}/rest/api/3/issuetype/{}", s.base_url, t.id),
                   "iconUrl": format!("{}/images/icons/issuetypes/task.png", s.base_url)})
        })
        .collect();
    page(types, &q, "issueTypes")
}

/// A `FieldCreateMetadata`.
fn field_meta(id: &str, name: &str, required: bool, has_default: bool, schema: &str) -> Value {
    json!({"fieldId": id, "key": id, "name": name, "required": required,
           "hasDefaultValue": has_default, "operations": ["set"],
           "schema": {"type": schema, "system": id}})
}

/// The create screen of an issue type: the system fields Ordonis sets, and the type's
/// required fields.
fn screen(t: &FakeIssueType) -> Vec<Value> {
    let mut out = vec![
        field_meta("issuetype", "Issue Type", true, false, "issuetype"),
        field_meta("project", "Project", true, false, "project"),
        field_meta("summary", "Summary", true, false, "string"),
        field_meta("description", "Description", false, false, "doc"),
        field_meta("reporter", "Reporter", true, true, "user"),
        field_meta("assignee", "Assignee", false, false, "user"),
        field_meta("priority", "Priority", false, true, "priority"),
        field_meta("duedate", "Due date", false, false, "date"),
        field_meta("parent", "Parent", t.subtask, false, "issuelink"),
    ];
    out.extend(
        t.required
            .iter()
            .map(|(id, name)| field_meta(id, name, true, false, "any")),
    );
    out
}

/// `GET /rest/api/3/issue/createmeta/{project}/issuetypes/{issueTypeId}`.
pub(super) async fn meta_fields(
    State(s): State<Arc<Site>>,
    Path((project, type_id)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    s.log(format!(
        "GET /rest/api/3/issue/createmeta/{project}/issuetypes/{type_id}"
    ));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(p) = s.project(&project) else {
        return project_missing();
    };
    let Some(t) = p.issue_types.iter().find(|t| t.id == type_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "The issue type does not exist in the project.",
        );
    };
    page(screen(t), &q, "fields")
}

fn is_adf_doc(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_u64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
}

fn is_given(fields: &Map<String, Value>, id: &str) -> bool {
    fields.get(id).is_some_and(|v| match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    })
}

/// The properties of a create body, or why they are not ones Jira takes.
fn properties(body: &Value) -> Result<Map<String, Value>, &'static str> {
    let Some(list) = body.get("properties") else {
        return Ok(Map::new());
    };
    let list = list.as_array().ok_or("properties must be a list")?;
    let mut out = Map::new();
    for p in list {
        let key = p
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 255)
            .ok_or("The property key must be 1 to 255 characters.")?;
        let value = p.get("value").ok_or("The property value is required.")?;
        if value.to_string().len() > 32_768 {
            return Err("The property value is larger than 32768 bytes.");
        }
        out.insert(key.to_owned(), value.clone());
    }
    Ok(out)
}

/// `POST /rest/api/3/issue`.
pub(super) async fn create_issue(
    State(s): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log("POST /rest/api/3/issue".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some(fields) = body.get("fields").and_then(Value::as_object) else {
        return error(StatusCode::BAD_REQUEST, "fields missing");
    };
    let props = match properties(&body) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let mut errors = Map::new();
    let project_ref = fields.get("project");
    let project = project_ref
        .and_then(|p| p.get("key").or_else(|| p.get("id")))
        .and_then(Value::as_str)
        .and_then(|k| s.project(k));
    let Some(project) = project else {
        errors.insert("project".into(), json!("valid project is required"));
        return field_errors(errors);
    };
    if project.create_denied {
        return error(
            StatusCode::FORBIDDEN,
            "You do not have permission to create issues in this project.",
        );
    }
    let type_ref = fields.get("issuetype");
    let by_id = type_ref.and_then(|t| t.get("id")).and_then(Value::as_str);
    let by_name = type_ref.and_then(|t| t.get("name")).and_then(Value::as_str);
    let Some(ty) = project
        .issue_types
        .iter()
        .find(|t| Some(t.id.as_str()) == by_id || by_name.is_some_and(|n| n == t.name))
        .cloned()
    else {
        errors.insert(
            "issuetype".into(),
            json!("The issue type selected is invalid."),
        );
        return field_errors(errors);
    };
    if !is_given(fields, "summary") {
        errors.insert(
            "summary".into(),
            json!("You must specify a summary of the issue."),
        );
    }
    for (id, name) in &ty.required {
        if !is_given(fields, id) {
            errors.insert(id.clone(), json!(format!("{name} is required.")));
        }
    }
    let parent = match fields.get("parent") {
        Some(p) => {
            let r = p
                .get("key")
                .or_else(|| p.get("id"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            match s.find(r) {
                Some((pid, pv)) => Some(json!({"id": pid, "key": pv["key"]})),
                None => {
                    errors.insert("parent".into(), json!("Could not find issue by id or key."));
                    None
                }
            }
        }
        None if ty.subtask => {
            errors.insert(
                "parent".into(),
                json!("Given parent work item does not belong to appropriate hierarchy."),
            );
            None
        }
        None => None,
    };
    if let Some(d) = fields.get("description")
        && !(d.is_null() || is_adf_doc(d))
    {
        errors.insert(
            "description".into(),
            json!(
                "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
            ),
        );
    }
    let priority = match fields.get("priority") {
        None | Some(Value::Null) => Some(("3", "Medium")),
        Some(p) => {
            let by_id = p.get("id").and_then(Value::as_str);
            let by_name = p.get("name").and_then(Value::as_str);
            let found = PRIORITIES.iter().copied().find(|(id, n)| {
                Some(*id) == by_id || by_name.is_some_and(|b| b.eq_ignore_ascii_case(n))
            });
            if found.is_none() {
                errors.insert(
                    "priority".into(),
                    json!("Specify a valid 'id' or 'name' for Priority"),
                );
            }
            found
        }
    };
    if let Some(d) = fields.get("duedate")
        && !d.is_null()
        && d.as_str().and_then(super::search::parse_jql_date).is_none()
    {
        errors.insert(
            "duedate".into(),
            json!("Error parsing date string: expected yyyy-MM-dd"),
        );
    }
    if !errors.is_empty() {
        return field_errors(errors);
    }

    // Made: the issue in the workflow's first status, reported by the calling account.
    let now = jira_time(now_ms());
    let id = loop {
        let n = s.next_issue.fetch_add(1, Ordering::SeqCst).to_string();
        if s.find(&n).is_none() {
            break n;
        }
    };
    let number = 1 + lock(&s.issues)
        .values()
        .filter_map(|i| {
            i["key"]
                .as_str()?
                .strip_prefix(&format!("{}-", project.key))
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let key = format!("{}-{number}", project.key);
    let status = s
        .workflow()
        .statuses
        .first()
        .map_or(Value::Null, |(sid, n, c)| status_value(sid, n, c));
    let mut stored = fields.clone();
    let assignee = fields
        .get("assignee")
        .and_then(|a| a.get("accountId"))
        .and_then(Value::as_str)
        .map_or(Value::Null, |a| s.user_json(a));
    stored.insert("assignee".into(), assignee);
    stored.insert(
        "project".into(),
        json!({"id": project.id, "key": project.key, "name": project.name}),
    );
    stored.insert(
        "issuetype".into(),
        json!({"id": ty.id, "name": ty.name, "subtask": ty.subtask}),
    );
    stored.insert(
        "priority".into(),
        priority.map_or(Value::Null, |(id, n)| json!({"id": id, "name": n})),
    );
    stored.insert("status".into(), status);
    stored.insert("reporter".into(), s.user_json(API_ACCOUNT));
    stored.insert("creator".into(), s.user_json(API_ACCOUNT));
    stored.insert("created".into(), Value::String(now.clone()));
    stored.insert("updated".into(), Value::String(now));
    for k in ["description", "duedate"] {
        stored.entry(k).or_insert(Value::Null);
    }
    match parent {
        Some(p) => stored.insert("parent".into(), p),
        None => stored.remove("parent"),
    };
    s.put_issue(json!({"id": id, "key": key, "fields": stored}));
    lock(&s.issue_properties).insert(id.clone(), props);
    // The issue is made: Jira sends its webhook whatever becomes of the answer.
    s.echo_created(&id);
    if s.lose_create_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
    }
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "key": key,
                    "self": format!("{}/rest/api/3/issue/{id}", s.base_url)})),
    )
        .into_response()
}

/// `GET /rest/api/3/issue/{id}/properties/{key}`.
pub(super) async fn get_property(
    State(s): State<Arc<Site>>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/properties/{key}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    match lock(&s.issue_properties)
        .get(&issue)
        .and_then(|p| p.get(&key))
    {
        Some(v) => Json(json!({"key": key, "value": v})).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("The property with key '{key}' does not exist."),
        ),
    }
}

/// `GET /rest/api/3/user?accountId=`: a known user, or the API account; else a 404.
pub(super) async fn get_user(
    State(s): State<Arc<Site>>,
    Query(q): Query<UserQuery>,
    headers: HeaderMap,
) -> Response {
    s.log("GET /rest/api/3/user".to_owned());
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(account) = q.account_id.filter(|a| !a.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The query parameter 'accountId' is required.",
        );
    };
    if account != API_ACCOUNT && !lock(&s.users).contains_key(&account) {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "Specified user does not exist or you do not have required permissions: {account}"
            ),
        );
    }
    Json(s.user_json(&account)).into_response()
}

/// The issue types a project added with [`FakeJira::add_project`](super::FakeJira::add_project)
/// has: Task, Bug and Sub-task.
pub(super) fn default_issue_types() -> Vec<FakeIssueType> {
    [
        ("10001", "Task", false),
        ("10004", "Bug", false),
        ("10003", "Sub-task", true),
    ]
    .iter()
    .map(|(id, name, subtask)| FakeIssueType {
        id: (*id).to_owned(),
        name: (*name).to_owned(),
        subtask: *subtask,
        required: Vec::new(),
    })
    .collect()
}
