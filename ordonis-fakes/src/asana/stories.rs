//! The fake Asana's stories: `GET`/`POST /tasks/{gid}/stories` and `GET`/`PUT`/`DELETE
//! /stories/{gid}`, as strict as Asana: a comment is `text` **or** `html_text` (both, or
//! neither, is a 400), `html_text` is checked as rich text, only comment stories can be
//! edited and only their creator may edit or delete them (else a 403), system stories sit
//! among comments in a task's list, and pages are `limit` (1–100) and an opaque `offset`.
//!
//! Comment events, as Asana sends them: a comment story made, edited or deleted is an event
//! on the story (`resource: {gid, resource_type: "story", resource_subtype:
//! "comment_added"}`), recorded in the `GET /events` stream of the task's projects and
//! delivered to their webhooks (through the webhooks' `filters`, like task events). The
//! actions are those Asana's webhooks guide lists for comment stories ("Story: `type:
//! comment` added, changed, removed, undeleted", section *Resources and actions*, in the
//! Markdown source of Asana's docs, `CoryDAsana/developer-docs`
//! `source/includes/markdown/_webhooks.html.md`; older copies listed stories as "added,
//! removed, undeleted" only, before comment edits got events):
//!
//! - a new comment is `added`, its `parent` the task;
//! - an edit is `changed`, with `change: {field: "text", action: "changed"}` and, as the
//!   spec's `EventResponse` says of every event other than added/removed, `parent: null`
//!   (a receiver reads the story, whose `target` is the task); the `field` name is the
//!   fake's choice, the docs do not name it;
//! - a deletion is `removed` ("the resource was removed from a parent"), its `parent` the
//!   task: Asana does not send `deleted` for stories.
//!
//! Comments made through the API (`POST /tasks/{gid}/stories`, `PUT`/`DELETE
//! /stories/{gid}`) are the token's user's, and their events are echoes: recorded at once,
//! delivered in the background unless [`FakeAsana::set_echo`] is off (also when a post's
//! answer is lost, [`FakeAsana::lose_next_story_answer`]: the story exists). A person's
//! comments ([`FakeAsana::comment_as`], [`FakeAsana::edit_comment_as`],
//! [`FakeAsana::delete_comment_as`]) are delivered before the call returns;
//! [`FakeAsana::add_comment_as`] records and sends nothing (a dropped delivery), and neither
//! does [`FakeAsana::add_system_story`].
//!
//! [`FakeAsana::set_echo`]: super::FakeAsana::set_echo
//! [`FakeAsana::lose_next_story_answer`]: super::FakeAsana::lose_next_story_answer
//! [`FakeAsana::add_comment_as`]: super::FakeAsana::add_comment_as
//! [`FakeAsana::add_system_story`]: super::FakeAsana::add_system_story

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{API_USER, FakeAsana, Inner, errors, lock, rich};

/// Asana's page size limit.
const MAX_LIMIT: usize = 100;

/// A story's text from a comment request's `data`: `(text, html_text)`, or the 400 message.
fn comment_text(data: &serde_json::Map<String, Value>) -> Result<(String, String), String> {
    match (data.get("text"), data.get("html_text")) {
        (Some(_), Some(_)) => Err("text, html_text: only one of these may be given".into()),
        (None, None) => Err("text: Missing input".into()),
        (Some(t), None) => {
            let t = t.as_str().ok_or("text: must be a string")?;
            Ok((t.to_owned(), format!("<body>{}</body>", escape(t))))
        }
        (None, Some(h)) => {
            let h = h.as_str().ok_or("html_text: must be a string")?;
            let text = rich::check(h).map_err(|m| m.replacen("html_notes", "html_text", 1))?;
            Ok((text, h.to_owned()))
        }
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn data_of(body: &Bytes) -> Option<serde_json::Map<String, Value>> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("data")?
        .as_object()
        .cloned()
}

impl Inner {
    /// A new comment story on `task` by `(user gid, name)`.
    pub(super) fn new_story(&self, task: &str, by: (&str, &str), text: &str, html: &str) -> Value {
        let story = json!({
            "gid": self.gid(),
            "resource_type": "story",
            "resource_subtype": "comment_added",
            "type": "comment",
            "text": text,
            "html_text": html,
            "created_at": self.stamp(),
            "created_by": {"gid": by.0, "name": by.1, "resource_type": "user"},
            "is_edited": false,
            "target": {"gid": task, "resource_type": "task"},
        });
        lock(&self.stories)
            .entry(task.to_owned())
            .or_default()
            .push(story.clone());
        story
    }

    /// The event Asana sends about a comment story on `task` (see the module docs):
    /// `action` is `added`, `changed` (an edit of its text) or `removed` (a deletion).
    fn story_event(&self, user: &str, story: &str, task: &str, action: &str) -> Value {
        let subtype = lock(&self.tasks)
            .get(task)
            .and_then(|t| t["resource_subtype"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "default_task".to_owned());
        let mut e = json!({
            "user": {"gid": user, "resource_type": "user"},
            "created_at": self.stamp(),
            "action": action,
            "resource": {"gid": story, "resource_type": "story", "resource_subtype": "comment_added"},
            "parent": {"gid": task, "resource_type": "task", "resource_subtype": subtype},
        });
        if action == "changed" {
            e["parent"] = Value::Null;
            e["change"] = json!({"field": "text", "action": "changed"});
        }
        e
    }

    /// A story event of the API's own doing: recorded in the task's projects' streams at
    /// once, delivered in the background when echoes are on (as `PUT /tasks/{gid}` does).
    fn echo_story(self: &Arc<Self>, task: &str, event: Value) {
        let projects = self.projects_of(task);
        let events = vec![event];
        self.record(&projects, &events);
        if self.echo.load(Ordering::SeqCst) {
            let inner = self.clone();
            self.echoes.spawn(async move {
                inner.deliver_to(Some(&projects), events).await;
            });
        }
    }

    /// The task of a story and its index there.
    fn locate_story(&self, gid: &str) -> Option<(String, usize)> {
        lock(&self.stories).iter().find_map(|(task, list)| {
            list.iter()
                .position(|s| s.get("gid").and_then(Value::as_str) == Some(gid))
                .map(|i| (task.clone(), i))
        })
    }
}

pub(super) async fn list(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !lock(&s.tasks).contains_key(&gid) {
        return errors(StatusCode::NOT_FOUND, "task: Unknown object");
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_LIMIT,
        Some(Ok(l)) if (1..=MAX_LIMIT).contains(&l) => l,
        Some(_) => return errors(StatusCode::BAD_REQUEST, "limit: must be between 1 and 100"),
    };
    let start = match q.get("offset") {
        None => 0,
        Some(o) => match o.strip_prefix("st-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return errors(StatusCode::BAD_REQUEST, "offset: Invalid offset"),
        },
    };
    let all = lock(&s.stories).get(&gid).cloned().unwrap_or_default();
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let next = (end < all.len()).then(|| {
        let path = format!("/tasks/{gid}/stories?offset=st-{end}");
        json!({"offset": format!("st-{end}"), "path": path, "uri": path})
    });
    Json(json!({"data": page, "next_page": next})).into_response()
}

pub(super) async fn create(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    body: Bytes,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    if !lock(&s.tasks).contains_key(&gid) {
        return errors(StatusCode::NOT_FOUND, "task: Unknown object");
    }
    let Some(data) = data_of(&body) else {
        return errors(StatusCode::BAD_REQUEST, "data: Missing input");
    };
    let (text, html) = match comment_text(&data) {
        Ok(x) => x,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &m),
    };
    let story = s.new_story(&gid, (API_USER, "Ordonis API"), &text, &html);
    let story_gid = story["gid"].as_str().unwrap_or_default();
    s.echo_story(&gid, s.story_event(API_USER, story_gid, &gid, "added"));
    // The story is made (and its event out); its answer may be lost on the way back.
    if s.lose_story_answers
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return errors(StatusCode::GATEWAY_TIMEOUT, "upstream timed out");
    }
    (StatusCode::CREATED, Json(json!({ "data": story }))).into_response()
}

pub(super) async fn get_one(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    match s.locate_story(&gid) {
        Some((task, i)) => {
            let story = lock(&s.stories)[&task][i].clone();
            Json(json!({ "data": story })).into_response()
        }
        None => errors(StatusCode::NOT_FOUND, "story: Unknown object"),
    }
}

/// Whether the token's user may change a story: its creator, and only for a comment.
/// `Err` is the 403's message.
fn may_change(story: &Value) -> Result<(), &'static str> {
    if story.get("resource_subtype").and_then(Value::as_str) != Some("comment_added") {
        return Err("Only comment stories can be edited");
    }
    if story
        .get("created_by")
        .and_then(|c| c.get("gid"))
        .and_then(Value::as_str)
        != Some(API_USER)
    {
        return Err("Only the creator of a story may change it");
    }
    Ok(())
}

pub(super) async fn update(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
    body: Bytes,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some((task, i)) = s.locate_story(&gid) else {
        return errors(StatusCode::NOT_FOUND, "story: Unknown object");
    };
    let Some(data) = data_of(&body) else {
        return errors(StatusCode::BAD_REQUEST, "data: Missing input");
    };
    let (text, html) = match comment_text(&data) {
        Ok(x) => x,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &m),
    };
    let mut all = lock(&s.stories);
    let Some(story) = all.get_mut(&task).and_then(|l| l.get_mut(i)) else {
        return errors(StatusCode::NOT_FOUND, "story: Unknown object");
    };
    if let Err(why) = may_change(story) {
        return errors(StatusCode::FORBIDDEN, why);
    }
    story["text"] = Value::String(text);
    story["html_text"] = Value::String(html);
    story["is_edited"] = Value::Bool(true);
    let story = story.clone();
    drop(all);
    s.echo_story(&task, s.story_event(API_USER, &gid, &task, "changed"));
    Json(json!({ "data": story })).into_response()
}

pub(super) async fn delete(
    State(s): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(gid): Path<String>,
) -> Response {
    if !s.authorized(&headers) {
        return errors(StatusCode::UNAUTHORIZED, "Not Authorized");
    }
    let Some((task, i)) = s.locate_story(&gid) else {
        return errors(StatusCode::NOT_FOUND, "story: Unknown object");
    };
    let mut all = lock(&s.stories);
    let Some(list) = all.get_mut(&task) else {
        return errors(StatusCode::NOT_FOUND, "story: Unknown object");
    };
    if let Err(why) = list.get(i).map_or(Ok(()), may_change) {
        return errors(StatusCode::FORBIDDEN, why);
    }
    list.remove(i);
    drop(all);
    s.echo_story(&task, s.story_event(API_USER, &gid, &task, "removed"));
    Json(json!({"data": {}})).into_response()
}

/// Whether `user` may edit or delete `story` in Asana: a comment, and theirs.
fn persons_comment(story: &Value, user: &str) -> bool {
    story["resource_subtype"] == "comment_added" && story["created_by"]["gid"] == user
}

impl FakeAsana {
    /// A person (`user_gid`, shown as `name`) comments on a task with plain `text`; the
    /// `added` story event (parent: the task) is recorded in the task's projects' streams
    /// and delivered to their webhooks before this returns. Returns the story's gid.
    /// [`FakeAsana::add_comment_as`] is the same comment without any event.
    pub async fn comment_as(&self, task: &str, user_gid: &str, name: &str, text: &str) -> String {
        let gid = self.add_comment_as(task, user_gid, name, text);
        let event = self.inner.story_event(user_gid, &gid, task, "added");
        self.inner.announce(task, vec![event], true).await;
        gid
    }

    /// A person (`user_gid`) edits their comment to plain `text` (`is_edited` becomes true);
    /// the `changed` story event (`change.field: "text"`, `parent: null`) is recorded and
    /// delivered before this returns. `false` when there is no such story, or it is not a
    /// comment by `user_gid` (Asana lets only a comment's author edit it).
    pub async fn edit_comment_as(&self, story_gid: &str, user_gid: &str, text: &str) -> bool {
        let Some((task, i)) = self.inner.locate_story(story_gid) else {
            return false;
        };
        {
            let mut all = lock(&self.inner.stories);
            let Some(story) = all.get_mut(&task).and_then(|l| l.get_mut(i)) else {
                return false;
            };
            if !persons_comment(story, user_gid) {
                return false;
            }
            story["text"] = Value::String(text.to_owned());
            story["html_text"] = Value::String(format!("<body>{}</body>", escape(text)));
            story["is_edited"] = Value::Bool(true);
        }
        let event = self
            .inner
            .story_event(user_gid, story_gid, &task, "changed");
        self.inner.announce(&task, vec![event], true).await;
        true
    }

    /// A person (`user_gid`) deletes their comment; the `removed` story event (parent: the
    /// task) is recorded and delivered before this returns. `false` when there is no such
    /// story, or it is not a comment by `user_gid`.
    pub async fn delete_comment_as(&self, story_gid: &str, user_gid: &str) -> bool {
        let Some((task, i)) = self.inner.locate_story(story_gid) else {
            return false;
        };
        {
            let mut all = lock(&self.inner.stories);
            let Some(list) = all.get_mut(&task) else {
                return false;
            };
            if !list.get(i).is_some_and(|s| persons_comment(s, user_gid)) {
                return false;
            }
            list.remove(i);
        }
        let event = self
            .inner
            .story_event(user_gid, story_gid, &task, "removed");
        self.inner.announce(&task, vec![event], true).await;
        true
    }
}
