//! The fake Jira's remote links (REST v3): `GET`/`POST /rest/api/3/issue/{id}/remotelink`
//! and `DELETE …/remotelink/{linkId}`, as the spec (`createOrUpdateRemoteIssueLink`,
//! `getRemoteIssueLinks`, `deleteRemoteIssueLinkById`) describes them:
//!
//! - a `POST` whose `globalId` names a link the issue has **updates** it (every field the
//!   request leaves out is set to null, as Jira does) and answers `200`; otherwise it creates
//!   one and answers `201`; both answer `RemoteIssueLinkIdentifies` (`{"id": <int64>,
//!   "self": "<base>/rest/api/3/issue/<issue id>/remotelink/<id>"}`);
//! - `object`, `object.url` and `object.title` are required: a request without them is a
//!   `400` in Jira's error shape, `{"errorMessages": [], "errors": {"title": "'title' is
//!   required."}}` (the spec's example; `url` is said the same way), and a `globalId` longer
//!   than 255 characters is a `400` too;
//! - `GET` lists the issue's links (`RemoteIssueLink`: `id`, `self`, `globalId`,
//!   `application`, `relationship`, `object`) as an array; with `?globalId=` it answers the
//!   one link with that global id as an object ("the record with that global ID is
//!   returned"), `404` when the issue has none;
//! - `DELETE` answers `204`; a link of another issue is a `400` ("the remote issue link does
//!   not belong to the issue"), an unknown one a `404`, as is an unknown issue everywhere.
//!
//! Every request needs credentials (`401`). [`FakeJira::fail_next_write`] applies to the
//! writes (`POST`, `DELETE`), and a `POST` whose answer is lost
//! ([`FakeJira::lose_next_link_answer`]) still made or updated its link. Jira sends no
//! webhook for a remote link, and neither does the fake.
//!
//! [`FakeJira::fail_next_write`]: super::FakeJira::fail_next_write
//! [`FakeJira::lose_next_link_answer`]: super::FakeJira::lose_next_link_answer

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::site::{Site, authorized, error, lock, write_fault};

/// Jira's limit on a remote link's `globalId`.
pub const MAX_GLOBAL_ID_CHARS: usize = 255;

#[derive(Debug, Default, Deserialize)]
pub(super) struct LinkQuery {
    #[serde(default, rename = "globalId")]
    global_id: Option<String>,
}

/// Jira's answer to a refused request body: `errors` names each field and why.
fn field_errors(errors: Map<String, Value>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorMessages": [], "errors": errors})),
    )
        .into_response()
}

/// A link as the API shows it: its `self` added.
fn shown(s: &Site, issue: &str, link: &Value) -> Value {
    let mut v = link.clone();
    let id = link.get("id").and_then(Value::as_u64).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "self".into(),
            Value::String(format!(
                "{}/rest/api/3/issue/{issue}/remotelink/{id}",
                s.base_url
            )),
        );
    }
    v
}

/// Why a `RemoteIssueLinkRequest` is refused, field by field (empty: it is not).
fn problems(body: &Value) -> Map<String, Value> {
    let mut errors = Map::new();
    let Some(object) = body.get("object").and_then(Value::as_object) else {
        errors.insert("object".into(), json!("'object' is required."));
        return errors;
    };
    for field in ["url", "title"] {
        let given = object
            .get(field)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.trim().is_empty());
        if !given {
            errors.insert(field.into(), json!(format!("'{field}' is required.")));
        }
    }
    match body.get("globalId") {
        None | Some(Value::Null) => {}
        Some(Value::String(g)) if g.chars().count() <= MAX_GLOBAL_ID_CHARS => {}
        Some(Value::String(_)) => {
            errors.insert(
                "globalId".into(),
                json!("The global ID must not exceed 255 characters."),
            );
        }
        Some(_) => {
            errors.insert("globalId".into(), json!("The global ID must be a string."));
        }
    }
    errors
}

impl Site {
    /// Stores a remote link on `issue` (an issue id) from a request body: updates the link
    /// with the same non-empty `globalId`, else adds one. Returns the link as stored and
    /// whether it was created.
    pub(super) fn upsert_link(&self, issue: &str, body: &Value) -> (Value, bool) {
        let global = body
            .get("globalId")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
        let mut all = lock(&self.remote_links);
        let list = all.entry(issue.to_owned()).or_default();
        let existing = global.as_deref().and_then(|g| {
            list.iter()
                .position(|l| l.get("globalId").and_then(Value::as_str) == Some(g))
        });
        let id = match existing {
            Some(i) => list[i]
                .get("id")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            None => self.next_link.fetch_add(1, Ordering::SeqCst),
        };
        // What the request gives, and nothing else: a field it leaves out is null after an
        // update, as Jira documents.
        let mut link = Map::new();
        link.insert("id".into(), json!(id));
        for k in ["globalId", "application", "relationship", "object"] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                link.insert(k.into(), v.clone());
            }
        }
        let link = Value::Object(link);
        match existing {
            Some(i) => {
                list[i] = link.clone();
                (link, false)
            }
            None => {
                list.push(link.clone());
                (link, true)
            }
        }
    }
}

pub(super) async fn list(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/remotelink"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let links = lock(&s.remote_links)
        .get(&issue)
        .cloned()
        .unwrap_or_default();
    match q.global_id {
        None => Json(Value::Array(
            links.iter().map(|l| shown(&s, &issue, l)).collect(),
        ))
        .into_response(),
        Some(g) => match links
            .iter()
            .find(|l| l.get("globalId").and_then(Value::as_str) == Some(g.as_str()))
        {
            Some(l) => Json(shown(&s, &issue, l)).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                "No remote issue link with the given global ID was found.",
            ),
        },
    }
}

pub(super) async fn create_or_update(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("POST /rest/api/3/issue/{id}/remotelink"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let errors = problems(&body);
    if !errors.is_empty() {
        return field_errors(errors);
    }
    let (link, created) = s.upsert_link(&issue, &body);
    // The link is made (or updated); its answer may be lost on the way back.
    if s.lose_link_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
    }
    let shown = shown(&s, &issue, &link);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"id": shown["id"], "self": shown["self"]})),
    )
        .into_response()
}

pub(super) async fn delete(
    State(s): State<Arc<Site>>,
    Path((id, link_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    s.log(format!(
        "DELETE /rest/api/3/issue/{id}/remotelink/{link_id}"
    ));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if let Some(fault) = write_fault(&s) {
        return fault;
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let Ok(link_id) = link_id.parse::<u64>() else {
        return error(StatusCode::BAD_REQUEST, "The link ID is invalid.");
    };
    let is_it = |l: &Value| l.get("id").and_then(Value::as_u64) == Some(link_id);
    let mut all = lock(&s.remote_links);
    if let Some(list) = all.get_mut(&issue)
        && let Some(i) = list.iter().position(is_it)
    {
        list.remove(i);
        return StatusCode::NO_CONTENT.into_response();
    }
    if all.values().flatten().any(is_it) {
        return error(
            StatusCode::BAD_REQUEST,
            "The remote issue link does not belong to the issue.",
        );
    }
    error(
        StatusCode::NOT_FOUND,
        "No remote issue link with the given ID was found.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_needs_an_object_with_a_url_and_a_title() {
        assert!(problems(&json!({"object": {"url": "https://x", "title": "t"}})).is_empty());
        assert_eq!(
            Value::Object(problems(&json!({"object": {"url": "https://x"}}))),
            json!({"title": "'title' is required."})
        );
        assert_eq!(
            problems(&json!({"object": {"title": "t", "url": 5}}))
                .keys()
                .collect::<Vec<_>>(),
            ["url"]
        );
        assert_eq!(
            problems(&json!({"object": {"title": " ", "url": "https://x"}}))
                .keys()
                .collect::<Vec<_>>(),
            ["title"],
            "a blank title is none"
        );
        assert!(problems(&json!({"globalId": "g"})).contains_key("object"));
        let long = "g".repeat(MAX_GLOBAL_ID_CHARS + 1);
        assert!(
            problems(&json!({"globalId": long, "object": {"url": "u", "title": "t"}}))
                .contains_key("globalId")
        );
    }
}
