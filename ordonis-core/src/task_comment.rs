//! The conversation on a task as CollabHub's store keeps it: [`TaskComment`], one row per
//! comment, whoever wrote it and wherever.
//!
//! A comment written in CollabHub (by a person or an agent) carries a [`CommentSync`]: what
//! the next push must do with it and how far the last one got. A comment read from a provider
//! carries the provider's id and the provider time of the state held, so that replays and
//! reordered webhooks converge: an older state is a no-op, and a deletion wins.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::actor::Actor;
use crate::error::InvalidInput;
use crate::ids::{CommentId, IntegrationId, TaskId, WorkspaceId};
use crate::policy::Direction;

/// A comment on a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskComment {
    /// CollabHub's id (also the marker that ties the provider's copy of ours to it).
    pub id: CommentId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The task it is on.
    pub task_id: TaskId,
    /// Optimistic-concurrency revision, as for tasks.
    pub revision: u64,
    /// Who wrote it: a CollabHub actor (an agent with its principals), or the provider
    /// account, with its display name.
    pub author: Actor,
    /// Where it was written: `collabhub`, or the provider's name.
    pub source: String,
    /// The body in Markdown, without the attribution line Ordonis adds in the provider.
    pub body: String,
    /// The integration it syncs through (the task's link when written), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    /// The provider's id of the comment, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When its body last changed, if ever.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub edited_at: Option<OffsetDateTime>,
    /// Deleted (a tombstone: its body is kept, never shown as live).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The provider time (epoch ms) of the state held: a provider state older than this is
    /// a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_version_ms: Option<i64>,
    /// For a comment written in CollabHub and synced to a provider: its push state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<CommentSync>,
}

/// Where [`TaskComment::source`] says a comment was written in CollabHub.
pub const COLLABHUB_SOURCE: &str = "collabhub";

impl TaskComment {
    /// Whether CollabHub wrote it (so only CollabHub may edit or delete it).
    pub fn is_ours(&self) -> bool {
        self.source == COLLABHUB_SOURCE
    }

    /// Whether the next push has something to do with it.
    pub fn has_pending_push(&self) -> bool {
        self.sync.as_ref().is_some_and(|s| s.pending.is_some())
    }
}

/// The push state of a comment written in CollabHub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentSync {
    /// How far it got.
    pub state: CommentSyncState,
    /// What the next push must do; `None` when the provider holds what CollabHub holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<CommentOp>,
    /// A post started and its answer never came (it may exist in the provider): the next
    /// attempt looks for the marker before posting again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub post_in_doubt: bool,
    /// Why the provider refused it, or why the push failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CommentSync {
    /// A push of `op` waiting.
    pub fn pending(op: CommentOp) -> Self {
        Self {
            state: CommentSyncState::Pending,
            pending: Some(op),
            post_in_doubt: false,
            error: None,
        }
    }
}

/// How far the push of a comment got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentSyncState {
    /// Waiting for a push.
    Pending,
    /// The provider accepted it; its webhook has not confirmed it yet.
    Sent,
    /// The provider's webhook (or a reconcile) showed it back: it is there.
    Confirmed,
    /// The push failed for good (the task's object is gone, or left the scope).
    Failed,
    /// The provider refused it (too long, not allowed): the reason is in `error` and in the
    /// ledger. Never retried.
    Refused,
}

impl CommentSyncState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommentSyncState::Pending => "pending",
            CommentSyncState::Sent => "sent",
            CommentSyncState::Confirmed => "confirmed",
            CommentSyncState::Failed => "failed",
            CommentSyncState::Refused => "refused",
        }
    }
}

/// What a push does with a comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentOp {
    /// Post it.
    Post,
    /// Replace its body.
    Edit,
    /// Delete it.
    Delete,
}

/// A comment write in a unit of work: inserted when `expected_revision` is `None`, else
/// updated only while the stored revision still equals it (`Conflict` otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentWrite {
    /// The new state (its `revision` is the new revision).
    pub comment: TaskComment,
    /// The revision it was computed from; `None` inserts it.
    pub expected_revision: Option<u64>,
}

/// How an integration syncs comments ([`crate::IntegrationConfig::comments`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentSettings {
    /// Which way comments flow (default `both`): `inbound_only` reads the provider's
    /// comments and pushes none, `outbound_only` pushes ours and reads none, `off` neither.
    #[serde(default = "both")]
    pub direction: Direction,
}

fn both() -> Direction {
    Direction::Both
}

impl Default for CommentSettings {
    fn default() -> Self {
        Self {
            direction: Direction::Both,
        }
    }
}

impl CommentSettings {
    /// True for the defaults (then not stored).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The rule text of the ledger entries it decides (`comments;direction=both`).
    pub fn rule_text(&self) -> String {
        let dir = match self.direction {
            Direction::Both => "both",
            Direction::InboundOnly => "inbound_only",
            Direction::OutboundOnly => "outbound_only",
            Direction::Off => "off",
        };
        format!("comments;direction={dir}")
    }
}

/// The longest comment body CollabHub takes, in bytes (the providers' own limits are lower
/// and are their refusals to make: Jira's 32,767 characters).
pub const MAX_COMMENT_BYTES: usize = 256 * 1024;

/// Checks a comment body written in CollabHub: not blank, at most [`MAX_COMMENT_BYTES`], and
/// no control characters but newlines and tabs.
///
/// ```
/// use ordonis_core::check_comment_body;
/// assert!(check_comment_body("Looks good.\n\n- ship it").is_ok());
/// assert!(check_comment_body("  \n").is_err());
/// assert!(check_comment_body("bell\u{7}").is_err());
/// ```
pub fn check_comment_body(body: &str) -> Result<(), InvalidInput> {
    if body.trim().is_empty() {
        return Err(InvalidInput::new("body", "must not be empty"));
    }
    if body.len() > MAX_COMMENT_BYTES {
        return Err(InvalidInput::new(
            "body",
            format!("longer than {MAX_COMMENT_BYTES} bytes"),
        ));
    }
    if let Some(c) = body
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(InvalidInput::new(
            "body",
            format!("control character U+{:04X} is not allowed", u32::from(c)),
        ));
    }
    Ok(())
}
