//! The fake Jira's issue operations: `GET`/`PUT /rest/api/3/issue/{id}`, `GET …/editmeta`,
//! `PUT …/assignee`, `GET /rest/api/3/priority/search`, and `GET /browse/{key}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::site::{PRIORITIES, Site, authorized, error, lock, write_fault};

pub(super) async fn get_issue(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
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
                // `properties=k1,k2`: those issue properties, as Jira adds them.
                if let Some(wanted) = query.get("properties") {
                    let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
                    let issue_id = o
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or(&id)
                        .to_owned();
                    let props = lock(&s.issue_properties);
                    let mine: serde_json::Map<String, Value> = props
                        .get(&issue_id)
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| wanted.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    o.insert("properties".into(), Value::Object(mine));
                }
            }
            Json(v).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Issue does not exist"),
    }
}

pub(super) async fn edit_issue(
    State(s): State<Arc<Site>>,
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

fn is_adf_doc(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("doc")
        && v.get("version").and_then(Value::as_u64) == Some(1)
        && v.get("content").is_some_and(Value::is_array)
}

pub(super) async fn editmeta(
    State(s): State<Arc<Site>>,
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

pub(super) async fn priority_search(State(s): State<Arc<Site>>, headers: HeaderMap) -> Response {
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

pub(super) async fn assign(
    State(s): State<Arc<Site>>,
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

/// `GET /browse/{key}`: the link Jira hands out for an issue (`…/browse/KAN-22`), so that the
/// links a demo or a test shows lead somewhere. Plain text: the key, summary and status.
pub(super) async fn browse(State(s): State<Arc<Site>>, Path(key): Path<String>) -> Response {
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
