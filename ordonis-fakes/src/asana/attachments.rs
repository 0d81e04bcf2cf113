//! The fake Asana's attachments: `GET`/`POST /attachments` and `GET`/`DELETE
//! /attachments/{gid}`, as Asana's spec (`createAttachmentForObject`,
//! `getAttachmentsForObject`, `deleteAttachment`) describes them:
//!
//! - `POST /attachments` takes `multipart/form-data` only ("This endpoint expects a
//!   multipart/form-data encoded request"): any other body is a `400`. `parent` is required;
//!   `resource_subtype` is `asana` (the default, which needs a `file` part) or `external`,
//!   which needs `parent`, `name` and `url` ("if the value of `resource_subtype` is
//!   `external`, a `parent`, `name`, and `url` must also be provided"); a missing one is a
//!   `400` naming it (`name: Missing input`), an unknown parent a `404`, a task the token
//!   cannot see (`FakeAsana::hide_task`) a `403`. The wording of the multipart refusal and
//!   the fake's check that `url` is an `http(s)` URL are the fake's own. The answer is
//!   `200 {"data": <attachment>}`.
//! - an external attachment keeps its URL in `view_url` ("The URL where the attachment can
//!   be viewed"; the spec's `AttachmentResponse` has no `url` field), with `host:
//!   "external"`, a `permanent_url` on Asana's side and no `download_url`. An answer shows
//!   the compact fields (`gid`, `resource_type: "attachment"`, `name`, `resource_subtype`)
//!   and, of the others, only those `opt_fields` asks for, as Asana does.
//! - `GET /attachments?parent=<gid>` lists the parent's attachments, oldest first, in pages
//!   (`limit` 1–100, an opaque `offset`); `DELETE /attachments/{gid}` answers `{"data": {}}`,
//!   a `404` for an unknown (or already deleted) one.
//!
//! Attachments cannot be edited (there is no `PUT`). Every request needs the bearer token
//! (`401`), and the faults ([`FakeAsana::fail_next_requests`]) apply as to every route. A
//! post whose answer is lost ([`FakeAsana::lose_next_attachment_answer`]) still made its
//! attachment. The fake adds no `attachment_added` story and records no event for an
//! attachment.
//!
//! [`FakeAsana::fail_next_requests`]: super::FakeAsana::fail_next_requests
//! [`FakeAsana::lose_next_attachment_answer`]: super::FakeAsana::lose_next_attachment_answer

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{FakeAsana, Inner, data, errors, lock};

/// Asana's page size limit.
const MAX_LIMIT: usize = 100;

/// The fields every answer shows (Asana's `AttachmentCompact`).
const COMPACT: [&str; 4] = ["gid", "resource_type", "name", "resource_subtype"];

/// An attachment as an answer shows it: the compact fields, and those `opt_fields` asks for.
fn shown(a: &Value, q: &HashMap<String, String>) -> Value {
    let asked: Vec<&str> = q
        .get("opt_fields")
        .map(|f| f.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(o) = a.as_object() {
        for (k, v) in o {
            if COMPACT.contains(&k.as_str()) || asked.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

impl Inner {
    /// Why `gid` cannot be an attachment's parent for the token (unknown, or hidden from
    /// it): the answer to give, or `None` when it can.
    fn parent_problem(&self, gid: &str) -> Option<Response> {
        if lock(&self.hidden).contains(gid) {
            return Some(errors(
                StatusCode::FORBIDDEN,
                "You do not have access to the requested object.",
            ));
        }
        let known = lock(&self.tasks).contains_key(gid);
        (!known).then(|| errors(StatusCode::NOT_FOUND, "parent: Unknown object"))
    }

    /// Stores an external attachment on `parent`; the attachment as stored.
    pub(super) fn new_attachment(&self, parent: &str, name: &str, url: &str) -> Value {
        let gid = self.gid();
        let subtype = lock(&self.tasks)
            .get(parent)
            .and_then(|t| t["resource_subtype"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "default_task".to_owned());
        let task_name = lock(&self.tasks)
            .get(parent)
            .and_then(|t| t["name"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let a = json!({
            "gid": gid,
            "resource_type": "attachment",
            "name": name,
            "resource_subtype": "external",
            "host": "external",
            "view_url": url,
            "download_url": null,
            "permanent_url": format!("https://app.asana.com/app/asana/-/get_asset?asset_id={gid}"),
            "created_at": self.stamp(),
            "connected_to_app": false,
            "parent": {"gid": parent, "resource_type": "task", "name": task_name,
                       "resource_subtype": subtype},
        });
        lock(&self.attachments)
            .entry(parent.to_owned())
            .or_default()
            .push(a.clone());
        a
    }

    /// The parent of an attachment and its index there.
    fn locate_attachment(&self, gid: &str) -> Option<(String, usize)> {
        lock(&self.attachments).iter().find_map(|(parent, list)| {
            list.iter()
                .position(|a| a.get("gid").and_then(Value::as_str) == Some(gid))
                .map(|i| (parent.clone(), i))
        })
    }
}

/// The text parts of a multipart body (a `file` part is kept as present, its bytes dropped).
async fn form_fields(req: Request) -> Result<HashMap<String, String>, String> {
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| format!("the multipart body could not be read: {e}"))?;
    let mut fields = HashMap::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| format!("the multipart body could not be read: {e}"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let text = if is_file {
            // An uploaded file: this fake keeps no content.
            field.bytes().await.map(|_| String::new())
        } else {
            field.text().await
        }
        .map_err(|e| format!("{name}: could not be read: {e}"))?;
        fields.insert(name, text);
    }
    Ok(fields)
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace)
}

pub(super) async fn create(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    if !s.authorized(req.headers()) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
    if !multipart {
        return errors(
            StatusCode::BAD_REQUEST,
            "An attachment must be uploaded as multipart/form-data.",
        );
    }
    let fields = match form_fields(req).await {
        Ok(f) => f,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &m),
    };
    let given = |k: &str| fields.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(parent) = given("parent") else {
        return errors(StatusCode::BAD_REQUEST, "parent: Missing input");
    };
    match given("resource_subtype").unwrap_or("asana") {
        "external" => {}
        "asana" => {
            return errors(
                StatusCode::BAD_REQUEST,
                if fields.contains_key("file") {
                    "file: this fake keeps no uploaded files"
                } else {
                    "file: Missing input"
                },
            );
        }
        other => {
            return errors(
                StatusCode::BAD_REQUEST,
                &format!("resource_subtype: Not a recognized value: {other}"),
            );
        }
    }
    let Some(name) = given("name") else {
        return errors(StatusCode::BAD_REQUEST, "name: Missing input");
    };
    let Some(url) = given("url") else {
        return errors(StatusCode::BAD_REQUEST, "url: Missing input");
    };
    if !is_http_url(url) {
        return errors(StatusCode::BAD_REQUEST, "url: Not a valid URL");
    }
    if let Some(problem) = s.parent_problem(parent) {
        return problem;
    }
    let a = s.new_attachment(parent, name, url);
    // The attachment is made; its answer may be lost on the way back.
    if s.lose_attachment_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return errors(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
    }
    data(StatusCode::OK, shown(&a, &q))
}

pub(super) async fn list(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some(parent) = q.get("parent").filter(|p| !p.is_empty()) else {
        return errors(StatusCode::BAD_REQUEST, "parent: Missing input");
    };
    if let Some(problem) = s.parent_problem(parent) {
        return problem;
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_LIMIT,
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => return errors(StatusCode::BAD_REQUEST, "limit: must be between 1 and 100"),
    };
    let start = match q.get("offset") {
        None => 0,
        Some(o) => match o.strip_prefix("at-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return errors(StatusCode::BAD_REQUEST, "offset: Invalid offset"),
        },
    };
    let all = lock(&s.attachments)
        .get(parent)
        .cloned()
        .unwrap_or_default();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|a| shown(a, &q))
        .collect();
    let end = start + page.len();
    let next = (end < all.len()).then(|| {
        let path = format!("/attachments?parent={parent}&offset=at-{end}");
        json!({"offset": format!("at-{end}"), "path": path, "uri": path})
    });
    axum::Json(json!({"data": page, "next_page": next})).into_response()
}

pub(super) async fn get_one(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    match s.locate_attachment(&gid) {
        Some((parent, i)) => {
            let a = lock(&s.attachments)[&parent][i].clone();
            data(StatusCode::OK, shown(&a, &q))
        }
        None => errors(StatusCode::NOT_FOUND, "attachment: Unknown object"),
    }
}

pub(super) async fn delete(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some((parent, i)) = s.locate_attachment(&gid) else {
        return errors(StatusCode::NOT_FOUND, "attachment: Unknown object");
    };
    if lock(&s.hidden).contains(&parent) {
        return errors(
            StatusCode::FORBIDDEN,
            "You do not have access to the requested object.",
        );
    }
    if let Some(list) = lock(&s.attachments).get_mut(&parent)
        && i < list.len()
    {
        list.remove(i);
    }
    data(StatusCode::OK, json!({}))
}

impl FakeAsana {
    /// The attachments of a task, oldest first, as stored (every field: `gid`, `name`,
    /// `resource_subtype`, `host`, `view_url`, `permanent_url`, `parent`, …).
    pub fn attachments(&self, task_gid: &str) -> Vec<Value> {
        lock(&self.inner.attachments)
            .get(task_gid)
            .cloned()
            .unwrap_or_default()
    }

    /// A person attaches a link (an external attachment named `name`, leading to `url`) to
    /// a task, as through Asana's app; the attachment's gid. No event is recorded.
    pub fn add_attachment_as(&self, task_gid: &str, name: &str, url: &str) -> String {
        let a = self.inner.new_attachment(task_gid, name, url);
        a["gid"].as_str().unwrap_or_default().to_owned()
    }

    /// The next `n` attachment posts make their attachment, then answer `504` as if the
    /// answer were lost on the way back (a client must look for it before posting again).
    pub fn lose_next_attachment_answer(&self, n: u64) {
        self.inner
            .lose_attachment_answers
            .store(n, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_shows_the_compact_fields_and_what_is_asked() {
        let a = json!({"gid": "1", "resource_type": "attachment", "name": "PR",
            "resource_subtype": "external", "view_url": "https://x", "host": "external"});
        assert_eq!(
            shown(&a, &HashMap::new()),
            json!({"gid": "1", "resource_type": "attachment", "name": "PR",
                   "resource_subtype": "external"})
        );
        let q = HashMap::from([("opt_fields".to_owned(), "name, view_url".to_owned())]);
        assert_eq!(shown(&a, &q)["view_url"], "https://x");
        assert!(shown(&a, &q).get("host").is_none());
    }

    #[test]
    fn urls_are_http() {
        assert!(is_http_url("https://github.com/acme/app/pull/42"));
        for bad in [
            "",
            "https://",
            "ftp://x",
            "javascript:alert(1)",
            "https://a b",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }
}
