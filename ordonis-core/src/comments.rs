//! The conversation on a task, as a provider holds it: the optional [`CommentProvider`]
//! ability an adapter hands out through [`Provider::comments`](crate::Provider::comments).
//!
//! Comments travel in Markdown, the internal form of rich text. A comment Ordonis posts
//! carries a *marker* (our comment's id) where the provider can keep one without showing it
//! (a Jira comment property; for Asana, see the adapter), so that its webhook is known as our
//! own echo, and a post whose answer was lost is retried only after
//! [`CommentProvider::find_comment`] finds no comment carrying it: exactly one comment exists
//! after any number of retries. The body ends with an attribution line naming who wrote it
//! for whom, so a person reading the ticket sees that an agent wrote it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::model::ObjectKey;
use crate::provider::{ProviderContext, RemoteActor};

/// A comment as the provider holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteComment {
    /// The task it is on.
    pub task: ObjectKey,
    /// The provider's id of the comment.
    pub external_id: String,
    /// Who wrote it, as the provider knows them (for ours, the integration's account).
    pub author: Option<RemoteActor>,
    /// The body in Markdown (the attribution line of ours included).
    pub body: String,
    /// When it was written, epoch ms.
    pub created_at_ms: i64,
    /// When it was last edited, epoch ms, if ever.
    pub edited_at_ms: Option<i64>,
    /// Our comment's id, for a comment Ordonis posted (read from where the provider keeps
    /// it); `None` for a person's comment.
    pub marker: Option<String>,
}

/// One page of a task's comments, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommentPage {
    /// The comments of this page.
    pub comments: Vec<RemoteComment>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<String>,
}

/// A comment to post or an edit to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommentDraft<'a> {
    /// Our comment's id, kept with the comment (see the module docs).
    pub marker: &'a str,
    /// The body, in Markdown.
    pub body: &'a str,
    /// Who wrote it for whom, shown under the body ("Triage bot (agent) for Alice Smith ·
    /// ledger entry 42").
    pub attribution: &'a str,
    /// A link to the ledger entry's receipt on the host, shown after the attribution
    /// (`http(s)` URLs only; anything else is left out).
    pub receipt_url: Option<&'a str>,
}

impl CommentDraft<'_> {
    /// The attribution line's Markdown, without its leading dash: the attribution escaped
    /// by `escape` (so a name reads as itself), then the receipt link when there is one.
    pub fn attribution_markdown(&self, escape: impl Fn(&str) -> String) -> String {
        let mut line = escape(self.attribution.trim());
        if let Some(url) = self.receipt_url.filter(|u| {
            (u.starts_with("https://") || u.starts_with("http://"))
                && !u.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>'))
        }) {
            if !line.is_empty() {
                line.push_str(" · ");
            }
            line.push_str(&format!("[receipt](<{url}>)"));
        }
        line
    }
}

/// Pages [`CommentProvider::find_comment`] reads at most (Jira refuses more than 5,000
/// comments on an issue: 50 pages of 100).
pub const MAX_MARKER_PAGES: u32 = 100;

/// The comment abilities of a provider. Reached through
/// [`Provider::comments`](crate::Provider::comments); a provider without them syncs fields
/// only.
#[async_trait]
pub trait CommentProvider: Send + Sync {
    /// One comment of a task (`NotFound` once it is deleted).
    async fn fetch_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
    ) -> Result<RemoteComment, ProviderError>;

    /// The task a comment is on, for an event keyed by the comment itself (Asana's `changed`
    /// story events name no parent): `key` is the event's object. `None` when `key` is a task
    /// already, or the comment is gone. Default: `None`.
    async fn comment_parent(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<Option<ObjectKey>, ProviderError> {
        let _ = (ctx, key);
        Ok(None)
    }

    /// A page of the task's comments, oldest first; `cursor` is a previous page's `next`.
    async fn list_comments(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        cursor: Option<&str>,
    ) -> Result<CommentPage, ProviderError>;

    /// Posts a comment. When the answer is lost (a timeout, a 5xx after the provider made
    /// it), call [`find_comment`](Self::find_comment) before posting again.
    async fn post_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError>;

    /// The task's comment carrying `marker`, if one exists: a scan of
    /// [`list_comments`](Self::list_comments), at most [`MAX_MARKER_PAGES`] pages. Override it
    /// where the provider can look a marker up directly.
    async fn find_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        marker: &str,
    ) -> Result<Option<RemoteComment>, ProviderError> {
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_MARKER_PAGES {
            let page = self.list_comments(ctx, task, cursor.as_deref()).await?;
            if let Some(found) = page
                .comments
                .into_iter()
                .find(|c| c.marker.as_deref() == Some(marker))
            {
                return Ok(Some(found));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(None)
    }

    /// Replaces the body of a comment Ordonis posted.
    async fn edit_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
        draft: &CommentDraft<'_>,
    ) -> Result<RemoteComment, ProviderError>;

    /// Deletes a comment Ordonis posted (deleting one already gone is not an error).
    async fn delete_comment(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        comment_id: &str,
    ) -> Result<(), ProviderError>;
}
