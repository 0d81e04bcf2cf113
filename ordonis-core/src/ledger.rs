//! The VERA ledger's records and the `Ledger` contract stores implement.
//!
//! The engine produces [`LedgerDraft`]s inside a unit of work; the store gives each one the
//! next index of its workspace's log and the time, seals it into a [`LedgerEntry`] (canonical
//! bytes + RFC 6962 leaf hash, see [`crate::vera`]) and commits it with the change it records.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::actor::Actor;
use crate::error::StoreError;
use crate::ids::{CommentId, IntegrationId, SessionId, TaskId, WorkspaceId};
use crate::model::{ExternalRef, Field, FieldValue};
use crate::session::{ActivityContent, Artifact, SessionState};

/// What happened to the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// The task was created (first seen).
    Create,
    /// A field was set.
    Set,
    /// The task was deleted in the provider (tombstoned).
    Delete,
    /// A tombstoned task is back: the provider restored the object (or can be read again).
    Restore,
    /// An integration's settings changed (no task: `task_id` is nil); `rule` says what
    /// changed, never a secret.
    Configure,
    /// The object left the integration's scope (removed from the project in scope, or a
    /// subtask the scope does not take): the task stops syncing; `rule` says why.
    LeaveScope,
    /// An object out of scope is back in it (added to a project in scope): it syncs again.
    EnterScope,
    /// A comment was written on the task ([`LedgerDraft::comment`] names it and holds its
    /// body); for our own comment, the provider's echo of it is a second entry of this op,
    /// `confirmed`, naming the provider's comment id.
    CommentAdd,
    /// A comment's body was edited (the entry holds the new body).
    CommentEdit,
    /// A comment was deleted (kept as a tombstone).
    CommentDelete,
    /// An agent opened a session on the task ([`LedgerDraft::session`] names it).
    SessionStart,
    /// An activity was appended to a session (the entry holds it).
    SessionActivity,
    /// A session's state changed (set, or derived from an activity: `stale`).
    SessionState,
    /// An artifact was added to a session.
    SessionArtifact,
    /// The task was linked to an object of a provider (`external` names it): an existing
    /// one, or the one created for it (`rule` says which). `rejected` when the provider
    /// refused to create it, with the reason.
    Link,
    /// The task was unlinked from its object (`external` names it): it no longer syncs
    /// with it, either way; the task and its history stay.
    Unlink,
}

impl Op {
    /// Whether the op is about a comment ([`LedgerDraft::comment`] is set).
    pub fn is_comment(self) -> bool {
        matches!(self, Op::CommentAdd | Op::CommentEdit | Op::CommentDelete)
    }

    /// Whether the op is about an agent session ([`LedgerDraft::session`] is set).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Op::SessionStart | Op::SessionActivity | Op::SessionState | Op::SessionArtifact
        )
    }
}

/// The decision the field policy took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The change became the task's value.
    Applied,
    /// A CollabHub change to a provider-owned field, sent as a request.
    Requested,
    /// The provider echoed a pushed value back: the push is confirmed.
    Confirmed,
    /// The change was refused (by the policy, or by the provider).
    Rejected,
    /// A provider change to a field that may not flow in: the owner's value is pushed back.
    Reverted,
    /// Both sides changed the field; the owner's value won.
    Conflict,
}

/// Why an entry exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseKind {
    /// An inbound webhook event.
    InboundEvent,
    /// A change made through the task API.
    InternalAction,
    /// An outbound push (a provider refusal, a conflict found at push time).
    Push,
    /// The provider echoing our own push back.
    SyncEcho,
    /// An object found by the backfill that imports an integration's scope on creation.
    Backfill,
    /// An object found by a reconcile run: a change no webhook brought (or brought yet).
    Reconcile,
}

/// The cause of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// Kind.
    pub kind: CauseKind,
    /// Our id of it: inbox event id, action id or outbox id.
    pub id: String,
    /// The provider's delivery id, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// For a sync echo or a push: the internal action that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_action: Option<String>,
    /// For inbound events: which authentication check passed and the body's SHA-256 (hex), so
    /// an auditor can re-check the stored raw body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// Provider authentication at append time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The check that passed (`hmac-sha256`, `jwt`).
    pub auth: String,
    /// SHA-256 of the raw body, hex.
    pub body_sha256: String,
}

/// One ledger record before it is given its place in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDraft {
    /// Workspace whose log it goes into.
    pub workspace_id: WorkspaceId,
    /// The integration it came through, if any.
    pub integration_id: Option<IntegrationId>,
    /// The task.
    pub task_id: TaskId,
    /// The task's external reference, when it has one.
    pub external: Option<ExternalRef>,
    /// What happened.
    pub op: Op,
    /// The field, for `Set`.
    pub field: Option<Field>,
    /// Value before.
    pub before: Option<FieldValue>,
    /// Value after (for a rejected change: the value that was asked for).
    pub after: Option<FieldValue>,
    /// The policy's decision.
    pub outcome: Outcome,
    /// The rule that decided it (`owner=provider;direction=both`) and why.
    pub rule: String,
    /// Who.
    pub actor: Actor,
    /// Why.
    pub cause: Cause,
    /// The provider's time of the change, when it came from a provider.
    pub occurred_at: Option<OffsetDateTime>,
    /// When Ordonis received it.
    pub observed_at: OffsetDateTime,
    /// For the comment ops: the comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentRecord>,
    /// For the session ops: the session, and the activity, state or artifact recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRecord>,
}

/// The session a session entry is about (the agent is the entry's actor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session.
    pub id: SessionId,
    /// For `session_start` and `session_state`: the state it is in after the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SessionState>,
    /// For `session_activity`: the activity's id and content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<(String, ActivityContent)>,
    /// For `session_artifact`: the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
}

/// The comment a comment entry is about, as the hashed leaf keeps it (the author is the
/// entry's actor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentRecord {
    /// CollabHub's id of the comment.
    pub id: CommentId,
    /// The provider's id of it, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The body (Markdown) as of this entry; `None` for a deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// A sealed ledger entry: its index in the workspace log, its time, its canonical bytes and
/// its RFC 6962 leaf hash. [`LedgerEntry::seal`] (defined with the encoding, in
/// [`crate::vera`]) makes one from a draft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// 0-based index in the workspace's log (gapless).
    pub idx: u64,
    /// When the store logged it.
    pub logged_at: OffsetDateTime,
    /// The record.
    pub record: LedgerDraft,
    /// Canonical encoding (what is hashed and exported).
    pub bytes: Vec<u8>,
    /// `SHA-256(0x00 || bytes)`.
    pub leaf_hash: [u8; 32],
}

/// A signed checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size it covers.
    pub size: u64,
    /// The signed note text.
    pub note: String,
}

/// Read access to the per-workspace VERA logs, plus checkpoint storage.
#[async_trait]
pub trait Ledger: Send + Sync + 'static {
    /// Number of entries in a workspace's log.
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError>;

    /// Entries `from..from+limit` of a workspace's log, in index order.
    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// A task's entries, oldest first.
    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError>;

    /// A page of a task's entries, oldest first: at most `limit` entries with an index
    /// above `after` (all of them from the start when `None`). Keyset paging on the index, so
    /// appended entries never shift a page. The default filters [`Ledger::task_ledger`];
    /// stores answer it with one bounded query.
    async fn task_ledger_page(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut all = self.task_ledger(ws, task).await?;
        all.retain(|e| after.is_none_or(|a| e.idx > a));
        all.truncate(limit);
        Ok(all)
    }

    /// Stores a signed checkpoint (append-only; one per size).
    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError>;

    /// The newest stored checkpoint.
    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;

    /// Stored roots of full subtrees, a cache for serving tiles
    /// ([`TileReader`](crate::vera::TileReader)): hash `i` of `level` (≥ 1) is the root of
    /// leaves `i·256^level .. (i+1)·256^level`. Returns the stored ones among
    /// `from..from+limit`, as `(i, hash)` in order. Default: none stored (every tile is
    /// computed from the leaves).
    async fn tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let _ = (ws, level, from, limit);
        Ok(Vec::new())
    }

    /// Stores hashes `from..from+hashes.len()` of `level` (see [`Ledger::tile_hashes`]); one
    /// already stored is kept. Default: nothing is stored.
    async fn save_tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        let _ = (ws, level, from, hashes);
        Ok(())
    }

    /// Stores a witness's cosignature line (c2sp.org/tlog-cosignature, checked by the caller)
    /// of the checkpoint of `size`, under the witness's key (`name+keyid`). The first line a
    /// witness gives for a size is kept; later ones are ignored.
    async fn add_cosignature(
        &self,
        ws: &WorkspaceId,
        size: u64,
        witness: &str,
        line: &str,
    ) -> Result<(), StoreError>;

    /// The cosignature lines stored for the checkpoint of `size`, ordered by witness key.
    async fn cosignatures(&self, ws: &WorkspaceId, size: u64) -> Result<Vec<String>, StoreError>;
}
