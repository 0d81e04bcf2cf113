//! Comments on Asana tasks (comment stories), the [`CommentProvider`] of [`AsanaProvider`].
//!
//! Bodies are `html_text`, converted to and from Markdown by [`crate::rich_text`]. Asana
//! stories have no hidden properties, so a comment Ordonis posts names our comment id at the
//! end of its attribution line, in view: "— Triage bot (agent) for Alice Smith · ref
//! 0193…". That footer is the marker: our own comment's events are known by it, and a post
//! whose answer was lost is retried only after [`CommentProvider::find_comment`] finds no
//! story carrying it. Only the story's creator may edit or delete it (Asana's rule); other
//! stories are refused by Asana, and the refusal says so.

use async_trait::async_trait;
use ordonis_core::markdown::escape_text;
use ordonis_core::{
    CommentDraft, CommentPage, CommentProvider, ObjectKey, ProviderContext, ProviderError,
    RemoteActor, RemoteComment,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{AsanaClient, check_gid};
use crate::error::AsanaError;
use crate::normalize::parse_time;
use crate::provider::AsanaProvider;
use crate::rich_text::{html_to_markdown, markdown_to_html, notes_to_markdown};

/// What a story is read with.
pub const STORY_OPT_FIELDS: &str =
    "resource_subtype,type,text,html_text,created_at,created_by,created_by.name,is_edited";

/// What one story is read with: its fields and the task it is on (events about a comment's
/// edit name no parent).
const ONE_STORY_OPT_FIELDS: &str = "resource_subtype,type,text,html_text,created_at,created_by,\
                                    created_by.name,is_edited,target";

/// The object type of a story, as an event keyed by one names it.
pub const STORY: &str = "story";

/// Stories asked for per page (Asana's maximum).
pub const PAGE_SIZE: u32 = 100;

/// What precedes the marker at the end of the attribution line.
const MARKER_PREFIX: &str = " · ref ";

/// The Markdown posted: the body, a blank line, and the attribution in italics ending with
/// the marker.
pub fn attributed(draft: &CommentDraft<'_>) -> String {
    let body = draft.body.trim_end();
    let attribution = draft.attribution_markdown(|s| escape_text(s, false));
    let sep = if attribution.is_empty() { "" } else { " " };
    format!(
        "{body}\n\n*—{sep}{attribution}{MARKER_PREFIX}{}*",
        escape_text(draft.marker, false)
    )
}

/// The marker at the end of a story's plain text, if it ends with one.
pub fn marker_of(text: &str) -> Option<String> {
    let last = text.trim_end().lines().last()?;
    let at = last.rfind(MARKER_PREFIX)?;
    let token = &last[at + MARKER_PREFIX.len()..];
    let ok = !token.is_empty()
        && token.len() <= 128
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| token.to_owned())
}

/// A comment story as a [`RemoteComment`]; `None` for stories that are not comments
/// (system stories: "changed the due date", "assigned to …").
pub fn remote_comment(task: &ObjectKey, v: &Value) -> Result<Option<RemoteComment>, AsanaError> {
    let subtype = v.get("resource_subtype").and_then(Value::as_str);
    if subtype.is_some_and(|s| s != "comment_added") {
        return Ok(None);
    }
    let external_id = v
        .get("gid")
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| AsanaError::Decode("a story without a gid".to_owned()))?
        .to_owned();
    let text = v.get("text").and_then(Value::as_str).unwrap_or_default();
    // The rich text when it reads; its plain text otherwise (never an empty body).
    let body = v
        .get("html_text")
        .and_then(Value::as_str)
        .and_then(|h| html_to_markdown(h).ok())
        .unwrap_or_else(|| notes_to_markdown(text));
    let author = v.get("created_by").and_then(|a| {
        Some(RemoteActor {
            account_id: a.get("gid")?.as_str()?.to_owned(),
            display_name: a.get("name").and_then(Value::as_str).map(str::to_owned),
            email: a.get("email").and_then(Value::as_str).map(str::to_owned),
            kind: match a.get("resource_type").and_then(Value::as_str) {
                Some("agent") => ordonis_core::PersonKind::Agent,
                _ => ordonis_core::PersonKind::Human,
            },
        })
    });
    Ok(Some(RemoteComment {
        task: task.clone(),
        external_id,
        author,
        body,
        created_at_ms: v
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .unwrap_or(0),
        // Asana says whether a story was edited, not when.
        edited_at_ms: None,
        marker: marker_of(text),
    }))
}

impl AsanaClient {
    /// `GET /tasks/{gid}/stories`, a page from `offset`.
    pub async fn stories(&self, task: &str, offset: Option<&str>) -> Result<Value, AsanaError> {
        let task = check_gid(task)?;
        let limit = PAGE_SIZE.to_string();
        let mut query = vec![("opt_fields", STORY_OPT_FIELDS), ("limit", limit.as_str())];
        if let Some(o) = offset {
            query.push(("offset", o));
        }
        let resp = self
            .call(
                Method::GET,
                &format!("/tasks/{task}/stories"),
                &query,
                None,
                &format!("the stories of task {task}"),
            )
            .await?;
        self.json(resp).await
    }

    /// `GET /stories/{gid}`.
    pub async fn get_story(&self, story: &str) -> Result<Value, AsanaError> {
        let story = check_gid(story)?;
        let resp = self
            .call(
                Method::GET,
                &format!("/stories/{story}"),
                &[("opt_fields", ONE_STORY_OPT_FIELDS)],
                None,
                &format!("story {story}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `POST /tasks/{gid}/stories` with `html_text` (a comment, authored as the token's user).
    pub async fn add_story(&self, task: &str, html: &str) -> Result<Value, AsanaError> {
        let task = check_gid(task)?;
        let body = json!({"data": {"html_text": html}});
        let resp = self
            .call(
                Method::POST,
                &format!("/tasks/{task}/stories"),
                &[("opt_fields", STORY_OPT_FIELDS)],
                Some(&body),
                &format!("a comment on task {task}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `PUT /stories/{gid}` with `html_text`.
    pub async fn update_story(&self, story: &str, html: &str) -> Result<Value, AsanaError> {
        let story = check_gid(story)?;
        let body = json!({"data": {"html_text": html}});
        let resp = self
            .call(
                Method::PUT,
                &format!("/stories/{story}"),
                &[("opt_fields", STORY_OPT_FIELDS)],
                Some(&body),
                &format!("story {story}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `DELETE /stories/{gid}`.
    pub async fn delete_story(&self, story: &str) -> Result<(), AsanaError> {
        let story = check_gid(story)?;
        self.call(
            Method::DELETE,
            &format!("/stories/{story}"),
            &[],
            None,
            &format!("story {story}"),
        )
        .await
        .map(drop)
    }
}

/// A page of stories: its comments, and the next page's offset.
fn page(task: &ObjectKey, v: &Value, asked: Option<&str>) -> Result<CommentPage, AsanaError> {
    let list = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| AsanaError::Decode("a story page without `data`".to_owned()))?;
    let mut comments = Vec::new();
    for s in list {
        if let Some(c) = remote_comment(task, s)? {
            comments.push(c);
        }
    }
    let next = v
        .get("next_page")
        .and_then(|n| n.get("offset"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty() && Some(*o) != asked)
        .map(str::to_owned);
    Ok(CommentPage { comments, next })
}

fn comment_of(task: &ObjectKey, v: &Value) -> Result<RemoteComment, ProviderError> {
    remote_comment(task, v)?
        .ok_or_else(|| ProviderError::BadInput("the story is not a comment".to_owned()))
}

#[async_trait]
impl CommentProvider for AsanaProvider {
    async fn fetch_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
    ) -> Result<RemoteComment, ProviderError> {
        let v = self.client(ctx)?.get_story(comment_id).await?;
        comment_of(task, &v)
    }

    async fn comment_parent(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<Option<ObjectKey>, ProviderError> {
        if key.object_type != STORY {
            return Ok(None);
        }
        match self.client(ctx)?.get_story(&key.external_id).await {
            Ok(v) => Ok(v
                .get("target")
                .and_then(|t| t.get("gid"))
                .and_then(Value::as_str)
                .map(|g| ObjectKey::new(g, crate::webhook::TASK))),
            Err(e) => match ProviderError::from(e) {
                ProviderError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn list_comments(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ProviderError> {
        let v = self.client(ctx)?.stories(&task.external_id, cursor).await?;
        Ok(page(task, &v, cursor)?)
    }

    async fn post_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError> {
        let html = markdown_to_html(&attributed(draft));
        let v = self
            .client(ctx)?
            .add_story(&task.external_id, &html)
            .await?;
        comment_of(task, &v)
    }

    async fn edit_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError> {
        let html = markdown_to_html(&attributed(draft));
        let v = self.client(ctx)?.update_story(comment_id, &html).await?;
        comment_of(task, &v)
    }

    async fn delete_comment(
        &self,
        ctx: &ProviderContext,
        _task: &ObjectKey,
        comment_id: &str,
    ) -> Result<(), ProviderError> {
        match self.client(ctx)?.delete_story(comment_id).await {
            Ok(()) | Err(AsanaError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_attribution_ends_with_the_marker_and_reads_back() {
        let d = CommentDraft {
            marker: "0193ab-7f",
            body: "Fixed *now*.",
            attribution: "Triage bot (agent) for Alice",
            receipt_url: None,
        };
        let md = attributed(&d);
        assert_eq!(
            md,
            "Fixed *now*.\n\n*— Triage bot (agent) for Alice · ref 0193ab-7f*"
        );
        // What Asana's plain `text` of that story ends with.
        assert_eq!(
            marker_of("Fixed now.\n— Triage bot (agent) for Alice · ref 0193ab-7f").as_deref(),
            Some("0193ab-7f")
        );
    }

    #[test]
    fn only_a_last_line_ending_in_a_marker_has_one() {
        for text in [
            "",
            "plain comment",
            "· ref abc\nand then more",
            "— x · ref ",
            "— x · ref a b",
            "— x · ref <b>",
        ] {
            assert_eq!(marker_of(text), None, "{text:?}");
        }
        assert_eq!(marker_of("— x · ref a_b-1  \n").as_deref(), Some("a_b-1"));
    }

    #[test]
    fn system_stories_are_not_comments() {
        let task = ObjectKey::new("1", "task");
        let system = json!({"gid": "9", "resource_subtype": "due_date_changed", "text": "x"});
        assert_eq!(remote_comment(&task, &system).unwrap(), None);
        let comment = json!({"gid": "9", "resource_subtype": "comment_added",
            "text": "hi <there>", "html_text": "<body>not xml <b></body>",
            "created_at": "2026-12-07T10:00:00.000Z", "created_by": {"gid": "u1", "name": "Ann"}});
        let c = remote_comment(&task, &comment).unwrap().unwrap();
        assert_eq!(
            c.body, "hi \\<there\\>",
            "unreadable rich text falls back to the text"
        );
        assert_eq!(c.created_at_ms, 1_796_637_600_000);
        assert!(remote_comment(&task, &json!({"resource_subtype": "comment_added"})).is_err());
    }

    #[test]
    fn a_comment_by_an_agent_has_an_agent_author() {
        let task = ObjectKey::new("5", "task");
        let story = |rtype: &str| {
            json!({"gid": "9", "resource_subtype": "comment_added", "type": "comment",
                   "text": "done", "created_at": "2026-12-07T10:00:00Z",
                   "created_by": {"gid": "a1", "name": "Triage bot", "resource_type": rtype}})
        };
        let c = remote_comment(&task, &story("agent")).unwrap().unwrap();
        let author = c.author.unwrap();
        assert_eq!(author.account_id, "a1");
        assert_eq!(author.kind, ordonis_core::PersonKind::Agent);
        let c = remote_comment(&task, &story("user")).unwrap().unwrap();
        assert_eq!(c.author.unwrap().kind, ordonis_core::PersonKind::Human);
    }
}
