//! The fake Jira's comments (REST v3): `GET`/`POST /rest/api/3/issue/{id}/comment` and
//! `GET`/`PUT`/`DELETE …/comment/{comment}`, as strict as Jira: bodies are ADF documents
//! (anything else is a 400), at most 32,767 characters of text, at most 5,000 comments on
//! an issue (then a 413), `properties` kept and shown only with `expand=properties`, and
//! only the API account's own comments may be edited or deleted (else a 400, as Jira answers
//! a missing permission).
//!
//! Each change made here is echoed as Jira Cloud's comment webhook (`comment_created`,
//! `comment_updated`, `comment_deleted`; the body is `Site::comment_body`'s) in the
//! background, like a field edit's echo: not when [`FakeJira::set_echo`] is off, dropped
//! while [`FakeJira::set_webhooks_enabled`] is off. A post whose answer is lost
//! ([`FakeJira::lose_next_comment_answer`]) still made its comment, so its webhook is sent.
//! A person's comments are [`FakeJira::comment_as`], [`FakeJira::edit_comment_as`] and
//! [`FakeJira::delete_comment_as`] (each delivers its webhook), or
//! [`FakeJira::add_comment_as`] (no webhook: one that was dropped).
//!
//! [`FakeJira::set_echo`]: super::FakeJira::set_echo
//! [`FakeJira::set_webhooks_enabled`]: super::FakeJira::set_webhooks_enabled
//! [`FakeJira::lose_next_comment_answer`]: super::FakeJira::lose_next_comment_answer
//! [`FakeJira::comment_as`]: super::FakeJira::comment_as
//! [`FakeJira::edit_comment_as`]: super::FakeJira::edit_comment_as
//! [`FakeJira::delete_comment_as`]: super::FakeJira::delete_comment_as
//! [`FakeJira::add_comment_as`]: super::FakeJira::add_comment_as

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::site::{API_ACCOUNT, Site, authorized, error, jira_time, lock, now_ms};

/// Jira's limit on a comment's text.
pub const MAX_COMMENT_CHARS: usize = 32_767;

/// Jira's limit on the comments of one issue.
pub const MAX_COMMENTS_PER_ISSUE: usize = 5_000;

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default, rename = "startAt")]
    start_at: Option<usize>,
    #[serde(default, rename = "maxResults")]
    max_results: Option<usize>,
    #[serde(default, rename = "orderBy")]
    order_by: Option<String>,
    #[serde(default)]
    expand: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ExpandQuery {
    #[serde(default)]
    expand: Option<String>,
}

fn with_properties(expand: Option<&str>) -> bool {
    expand.is_some_and(|e| e.split(',').any(|x| x.trim() == "properties"))
}

/// A stored comment as the API shows it.
fn shown(s: &Site, issue: &str, c: &Value, expand: Option<&str>) -> Value {
    let mut v = c.clone();
    if let Some(o) = v.as_object_mut() {
        if !with_properties(expand) {
            o.remove("properties");
        }
        let id = o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        o.insert(
            "self".into(),
            Value::String(format!(
                "{}/rest/api/3/issue/{issue}/comment/{id}",
                s.base_url
            )),
        );
    }
    v
}

/// The text of an ADF node, for the length limit.
fn text_len(v: &Value) -> usize {
    let own = v
        .get("text")
        .and_then(Value::as_str)
        .map_or(0, |t| t.chars().count());
    own + v
        .get("content")
        .and_then(Value::as_array)
        .map_or(0, |c| c.iter().map(text_len).sum())
}

/// Why a comment body is not one Jira takes, if it is not.
fn body_problem(body: Option<&Value>) -> Option<(StatusCode, String)> {
    let Some(doc) = body else {
        return Some((
            StatusCode::BAD_REQUEST,
            "Comment body can not be empty!".into(),
        ));
    };
    let is_doc = doc.get("type").and_then(Value::as_str) == Some("doc")
        && doc.get("version").and_then(Value::as_u64) == Some(1)
        && doc.get("content").is_some_and(Value::is_array);
    if !is_doc {
        return Some((StatusCode::BAD_REQUEST, "Comment body is not valid!".into()));
    }
    if text_len(doc) > MAX_COMMENT_CHARS {
        return Some((
            StatusCode::BAD_REQUEST,
            "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
                .into(),
        ));
    }
    None
}

fn comment_error(status: StatusCode, field_message: &str) -> Response {
    (
        status,
        Json(json!({"errorMessages": [], "errors": {"comment": field_message}})),
    )
        .into_response()
}

pub(super) async fn list(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/comment"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    let mut all = lock(&s.comments).get(&issue).cloned().unwrap_or_default();
    if q.order_by.as_deref() == Some("-created") {
        all.reverse();
    }
    let start = q.start_at.unwrap_or(0);
    let max = q.max_results.unwrap_or(5_000).min(5_000);
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(max)
        .map(|c| shown(&s, &issue, c, q.expand.as_deref()))
        .collect();
    Json(json!({"startAt": start, "maxResults": max, "total": all.len(), "comments": page}))
        .into_response()
}

pub(super) async fn add(
    State(s): State<Arc<Site>>,
    Path(id): Path<String>,
    Query(q): Query<ExpandQuery>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("POST /rest/api/3/issue/{id}/comment"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some((issue, _)) = s.find(&id) else {
        return error(StatusCode::NOT_FOUND, "Issue does not exist");
    };
    if let Some((status, why)) = body_problem(body.get("body")) {
        return comment_error(status, &why);
    }
    let properties = body.get("properties").cloned().unwrap_or(json!([]));
    let valid_properties = properties.as_array().is_some_and(|ps| {
        ps.iter().all(|p| {
            p.get("key")
                .and_then(Value::as_str)
                .is_some_and(|k| !k.is_empty() && k.len() <= 255)
                && p.get("value").is_some()
        })
    });
    if !valid_properties {
        return error(StatusCode::BAD_REQUEST, "Invalid comment properties");
    }
    let comment = {
        let mut all = lock(&s.comments);
        let list = all.entry(issue.clone()).or_default();
        if list.len() >= MAX_COMMENTS_PER_ISSUE {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The issue has reached the limit of 5000 comments.",
            );
        }
        let cid = s.next_comment.fetch_add(1, Ordering::SeqCst).to_string();
        let now = jira_time(now_ms());
        let author = json!({"accountId": API_ACCOUNT, "displayName": "Ordonis API"});
        let c = json!({
            "id": cid,
            "author": author,
            "updateAuthor": author,
            "body": body.get("body").cloned().unwrap_or(Value::Null),
            "created": now,
            "updated": now,
            "jsdPublic": true,
            "properties": properties,
        });
        list.push(c.clone());
        c
    };
    // The comment is made: Jira sends its webhook whatever becomes of the answer.
    s.echo_comment(&issue, &comment, "comment_created");
    // Its answer may be lost on the way back.
    if s.lose_comment_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
    }
    (
        StatusCode::CREATED,
        Json(shown(&s, &issue, &comment, q.expand.as_deref())),
    )
        .into_response()
}

/// The issue's id and the index of comment `cid` in its list.
/// Both misses are 404s; the error is Jira's message for which one it was.
fn locate(s: &Site, id: &str, cid: &str) -> Result<(String, usize), &'static str> {
    let Some((issue, _)) = s.find(id) else {
        return Err("Issue does not exist");
    };
    lock(&s.comments)
        .get(&issue)
        .and_then(|l| {
            l.iter()
                .position(|c| c.get("id").and_then(Value::as_str) == Some(cid))
        })
        .map(|i| (issue, i))
        .ok_or("Can not find a comment for the id")
}

fn is_ours(c: &Value) -> bool {
    c.get("author")
        .and_then(|a| a.get("accountId"))
        .and_then(Value::as_str)
        == Some(API_ACCOUNT)
}

pub(super) async fn get_one(
    State(s): State<Arc<Site>>,
    Path((id, cid)): Path<(String, String)>,
    Query(q): Query<ExpandQuery>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("GET /rest/api/3/issue/{id}/comment/{cid}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    match locate(&s, &id, &cid) {
        Ok((issue, i)) => {
            let c = lock(&s.comments)[&issue][i].clone();
            Json(shown(&s, &issue, &c, q.expand.as_deref())).into_response()
        }
        Err(why) => error(StatusCode::NOT_FOUND, why),
    }
}

pub(super) async fn update(
    State(s): State<Arc<Site>>,
    Path((id, cid)): Path<(String, String)>,
    Query(q): Query<ExpandQuery>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    s.log(format!("PUT /rest/api/3/issue/{id}/comment/{cid}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (issue, i) = match locate(&s, &id, &cid) {
        Ok(x) => x,
        Err(why) => return error(StatusCode::NOT_FOUND, why),
    };
    if let Some((status, why)) = body_problem(body.get("body")) {
        return comment_error(status, &why);
    }
    let mut all = lock(&s.comments);
    let Some(c) = all.get_mut(&issue).and_then(|l| l.get_mut(i)) else {
        return error(StatusCode::NOT_FOUND, "Can not find a comment for the id");
    };
    if !is_ours(c) {
        return error(
            StatusCode::BAD_REQUEST,
            "You do not have the permission to edit this comment.",
        );
    }
    if let Some(o) = c.as_object_mut() {
        o.insert(
            "body".into(),
            body.get("body").cloned().unwrap_or(Value::Null),
        );
        // An edit is always later than the comment, even within its millisecond.
        let created = o
            .get("created")
            .and_then(Value::as_str)
            .and_then(super::site::parse_jira_time)
            .unwrap_or(0);
        o.insert(
            "updated".into(),
            Value::String(jira_time(now_ms().max(created + 1))),
        );
    }
    let c = c.clone();
    drop(all);
    s.echo_comment(&issue, &c, "comment_updated");
    Json(shown(&s, &issue, &c, q.expand.as_deref())).into_response()
}

pub(super) async fn delete(
    State(s): State<Arc<Site>>,
    Path((id, cid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    s.log(format!("DELETE /rest/api/3/issue/{id}/comment/{cid}"));
    if !authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (issue, i) = match locate(&s, &id, &cid) {
        Ok(x) => x,
        Err(why) => return error(StatusCode::NOT_FOUND, why),
    };
    let mut all = lock(&s.comments);
    let Some(list) = all.get_mut(&issue) else {
        return error(StatusCode::NOT_FOUND, "Can not find a comment for the id");
    };
    if !list.get(i).is_some_and(is_ours) {
        return error(
            StatusCode::BAD_REQUEST,
            "You do not have the permission to delete this comment.",
        );
    }
    let gone = list.remove(i);
    drop(all);
    s.echo_comment(&issue, &gone, "comment_deleted");
    StatusCode::NO_CONTENT.into_response()
}
