//! Comments on Jira issues (REST v3), the [`CommentProvider`] of [`JiraProvider`].
//!
//! Bodies are ADF, converted to and from Markdown by [`crate::rich_text`]. A comment Ordonis
//! posts carries the comment property [`MARKER_PROPERTY`] (`{"comment_id": <our id>}`), set in
//! the create call itself: it is not shown to people, it comes back with
//! `expand=properties`, and so our own comment is told from a person's, and a retried post
//! finds the comment its lost answer made instead of making a second. The attribution line
//! ("— Triage bot (agent) for Alice Smith") is the body's last paragraph, in italics.

use async_trait::async_trait;
use ordonis_core::markdown::escape_text;
use ordonis_core::{
    CommentDraft, CommentPage, CommentProvider, ObjectKey, ProviderContext, ProviderError,
    RemoteActor, RemoteComment,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{JiraClient, check_issue_ref};
use crate::error::JiraError;
use crate::normalize::parse_jira_time;
use crate::provider::JiraProvider;
use crate::rich_text::{adf_to_markdown, markdown_to_adf};

/// The comment property that holds our comment id.
pub const MARKER_PROPERTY: &str = "ordonis";

/// Comments asked for per page (Jira's own default is 5,000; a page stays small).
pub const PAGE_SIZE: u32 = 100;

/// A comment id before it goes into a URL path (Jira's are numeric).
fn check_comment_id(id: &str) -> Result<&str, JiraError> {
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(JiraError::Config(format!("invalid Jira comment id {id:?}")))
    }
}

/// The Markdown posted: the body, a blank line, and the attribution in italics (escaped, so
/// a name reads as itself).
pub fn attributed(draft: &CommentDraft<'_>) -> String {
    let body = draft.body.trim_end();
    let attribution = draft.attribution_markdown(|s| escape_text(s, false));
    if attribution.is_empty() {
        return body.to_owned();
    }
    format!("{body}\n\n*— {attribution}*")
}

/// A comment of the REST API (`expand=properties`) as a [`RemoteComment`].
pub fn remote_comment(task: &ObjectKey, v: &Value) -> Result<RemoteComment, JiraError> {
    let external_id = match v.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(JiraError::Decode("a comment without an id".to_owned())),
    };
    let time = |k: &str| v.get(k).and_then(Value::as_str).and_then(parse_jira_time);
    let created_at_ms = time("created").unwrap_or(0);
    let edited_at_ms = time("updated").filter(|u| *u != created_at_ms);
    let author = v.get("author").and_then(|a| {
        Some(RemoteActor {
            account_id: a.get("accountId")?.as_str()?.to_owned(),
            display_name: a
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            email: a
                .get("emailAddress")
                .and_then(Value::as_str)
                .map(str::to_owned),
            kind: crate::normalize::account_kind(a),
        })
    });
    let marker = v
        .get("properties")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("key").and_then(Value::as_str) == Some(MARKER_PROPERTY))
        })
        .and_then(|p| p.get("value")?.get("comment_id")?.as_str())
        .map(str::to_owned);
    Ok(RemoteComment {
        task: task.clone(),
        external_id,
        author,
        body: adf_to_markdown(v.get("body").unwrap_or(&Value::Null)),
        created_at_ms,
        edited_at_ms,
        marker,
    })
}

impl JiraClient {
    /// `GET /rest/api/3/issue/{id}/comment/{comment}?expand=properties`.
    pub async fn get_comment(&self, issue: &str, comment: &str) -> Result<Value, JiraError> {
        let (issue, comment) = (check_issue_ref(issue)?, check_comment_id(comment)?);
        let rb = self.request(
            Method::GET,
            &format!("/rest/api/3/issue/{issue}/comment/{comment}?expand=properties"),
        );
        self.json(
            self.send(rb, &format!("comment {comment} on issue {issue}"))
                .await?,
        )
        .await
    }

    /// `GET /rest/api/3/issue/{id}/comment`, oldest first, from `start_at`.
    pub async fn comments(&self, issue: &str, start_at: u32) -> Result<Value, JiraError> {
        let issue = check_issue_ref(issue)?;
        let rb = self.request(
            Method::GET,
            &format!(
                "/rest/api/3/issue/{issue}/comment?startAt={start_at}&maxResults={PAGE_SIZE}\
                 &orderBy=created&expand=properties"
            ),
        );
        self.json(self.send(rb, &format!("comments of issue {issue}")).await?)
            .await
    }

    /// `POST /rest/api/3/issue/{id}/comment` with an ADF body and our marker property.
    pub async fn add_comment(
        &self,
        issue: &str,
        adf: &Value,
        marker: &str,
    ) -> Result<Value, JiraError> {
        let issue = check_issue_ref(issue)?;
        let body = json!({
            "body": adf,
            "properties": [{"key": MARKER_PROPERTY, "value": {"comment_id": marker}}],
        });
        let rb = self
            .request(
                Method::POST,
                &format!("/rest/api/3/issue/{issue}/comment?expand=properties"),
            )
            .json(&body);
        self.json(
            self.send(rb, &format!("a comment on issue {issue}"))
                .await?,
        )
        .await
    }

    /// `PUT /rest/api/3/issue/{id}/comment/{comment}` with an ADF body (no notification).
    pub async fn update_comment(
        &self,
        issue: &str,
        comment: &str,
        adf: &Value,
    ) -> Result<Value, JiraError> {
        let (issue, comment) = (check_issue_ref(issue)?, check_comment_id(comment)?);
        let rb = self
            .request(
                Method::PUT,
                &format!(
                    "/rest/api/3/issue/{issue}/comment/{comment}?notifyUsers=false&expand=properties"
                ),
            )
            .json(&json!({ "body": adf }));
        self.json(
            self.send(rb, &format!("comment {comment} on issue {issue}"))
                .await?,
        )
        .await
    }

    /// `DELETE /rest/api/3/issue/{id}/comment/{comment}`.
    pub async fn delete_comment(&self, issue: &str, comment: &str) -> Result<(), JiraError> {
        let (issue, comment) = (check_issue_ref(issue)?, check_comment_id(comment)?);
        let rb = self.request(
            Method::DELETE,
            &format!("/rest/api/3/issue/{issue}/comment/{comment}"),
        );
        self.send(rb, &format!("comment {comment} on issue {issue}"))
            .await
            .map(drop)
    }
}

/// A page of comments (`PageOfComments`) and where the next one starts.
fn page(task: &ObjectKey, v: &Value) -> Result<CommentPage, JiraError> {
    let list = v
        .get("comments")
        .and_then(Value::as_array)
        .ok_or_else(|| JiraError::Decode("a comment page without `comments`".to_owned()))?;
    let comments = list
        .iter()
        .map(|c| remote_comment(task, c))
        .collect::<Result<Vec<_>, _>>()?;
    let start = v.get("startAt").and_then(Value::as_u64).unwrap_or(0);
    let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
    let end = start + comments.len() as u64;
    let next = (!comments.is_empty() && end < total).then(|| end.to_string());
    Ok(CommentPage { comments, next })
}

fn start_at(cursor: Option<&str>) -> Result<u32, ProviderError> {
    match cursor {
        None => Ok(0),
        Some(c) => c
            .parse()
            .map_err(|_| ProviderError::BadInput(format!("not a Jira comment cursor: {c:?}"))),
    }
}

#[async_trait]
impl CommentProvider for JiraProvider {
    async fn fetch_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
    ) -> Result<RemoteComment, ProviderError> {
        let client = self.client(ctx)?;
        let v = client.get_comment(&task.external_id, comment_id).await?;
        Ok(remote_comment(task, &v)?)
    }

    async fn list_comments(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ProviderError> {
        let client = self.client(ctx)?;
        let v = client
            .comments(&task.external_id, start_at(cursor)?)
            .await?;
        Ok(page(task, &v)?)
    }

    async fn post_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError> {
        let client = self.client(ctx)?;
        let adf = markdown_to_adf(&attributed(draft));
        let v = client
            .add_comment(&task.external_id, &adf, draft.marker)
            .await?;
        Ok(remote_comment(task, &v)?)
    }

    async fn edit_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError> {
        let client = self.client(ctx)?;
        let adf = markdown_to_adf(&attributed(draft));
        let v = client
            .update_comment(&task.external_id, comment_id, &adf)
            .await?;
        Ok(remote_comment(task, &v)?)
    }

    async fn delete_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
    ) -> Result<(), ProviderError> {
        let client = self.client(ctx)?;
        match client.delete_comment(&task.external_id, comment_id).await {
            Ok(()) | Err(JiraError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_attribution_is_the_last_paragraph_escaped() {
        let d = CommentDraft {
            marker: "c1",
            body: "Fixed in *main*.\n",
            attribution: "Triage_bot (agent) for Alice [ops]",
            receipt_url: None,
        };
        assert_eq!(
            attributed(&d),
            "Fixed in *main*.\n\n*— Triage\\_bot (agent) for Alice \\[ops\\]*"
        );
        let plain = CommentDraft {
            attribution: " ",
            receipt_url: None,
            ..d
        };
        assert_eq!(attributed(&plain), "Fixed in *main*.");
    }

    #[test]
    fn comment_ids_are_numeric() {
        assert!(check_comment_id("10045").is_ok());
        for bad in ["", "1/2", "../x", "10045?x=1", &"1".repeat(33)] {
            assert!(check_comment_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_comment_reads_its_marker_author_and_times() {
        let task = ObjectKey::new("10001", "issue");
        let v = json!({
            "id": "10045",
            "author": {"accountId": "acc-1", "displayName": "Ann"},
            "body": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "hello"}]}]},
            "created": "2026-12-07T10:00:00.000+0000",
            "updated": "2026-12-07T10:05:00.000+0000",
            "properties": [
                {"key": "other", "value": {"comment_id": "nope"}},
                {"key": "ordonis", "value": {"comment_id": "c-7"}}
            ]
        });
        let c = remote_comment(&task, &v).unwrap();
        assert_eq!(c.external_id, "10045");
        assert_eq!(c.body, "hello");
        assert_eq!(c.marker.as_deref(), Some("c-7"));
        assert_eq!(c.author.unwrap().display_name.as_deref(), Some("Ann"));
        assert_eq!(c.edited_at_ms, Some(c.created_at_ms + 300_000));
        let unedited = json!({"id": 5, "created": "2026-12-07T10:00:00.000+0000",
            "updated": "2026-12-07T10:00:00.000+0000", "body": null});
        let c = remote_comment(&task, &unedited).unwrap();
        assert_eq!(
            (c.external_id.as_str(), c.edited_at_ms, c.marker),
            ("5", None, None)
        );
        assert!(remote_comment(&task, &json!({"body": null})).is_err());
    }

    #[test]
    fn pages_end_at_the_total() {
        let task = ObjectKey::new("1", "issue");
        let c = |id: u32| json!({"id": id.to_string(), "body": null});
        let first = json!({"startAt": 0, "maxResults": 2, "total": 3, "comments": [c(1), c(2)]});
        assert_eq!(page(&task, &first).unwrap().next.as_deref(), Some("2"));
        let last = json!({"startAt": 2, "maxResults": 2, "total": 3, "comments": [c(3)]});
        assert_eq!(page(&task, &last).unwrap().next, None);
        let empty = json!({"startAt": 4, "total": 9, "comments": []});
        assert_eq!(page(&task, &empty).unwrap().next, None, "no endless paging");
        assert!(page(&task, &json!({})).is_err());
    }
}
