//! Listing a workspace's tasks a page at a time: the [`TaskQuery`] every store answers with
//! keyset paging, its opaque [`TaskCursor`], and the stored per-task [`SyncState`].
//!
//! The sync state is derived here, once: the stores keep its inputs (the task's own part,
//! the set of fields whose last decision was a conflict, the count of failed or dead jobs)
//! in the task's row, in the same transaction that changes them, and
//! [`SyncState::derive`] (or, in SQL, a generated column written to match it) combines them.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::{InvalidInput, StoreError};
use crate::ids::{IntegrationId, TaskId, WorkspaceId};
use crate::ledger::{LedgerDraft, LedgerEntry, Op, Outcome};
use crate::model::{Field, Status};
use crate::task::Task;

/// A task's sync state, as the console and the API filter it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Nothing pending, no conflict, no error.
    InSync,
    /// A CollabHub change waits for its push or for the provider's echo.
    PushPending,
    /// A field's last decision was a conflict (both sides changed).
    Conflict,
    /// A push or an inbound event for the task failed or went dead.
    Error,
    /// Deleted in the provider, or linked to no provider object.
    OutOfScope,
}

impl SyncState {
    /// Every state, in the filter's order.
    pub const ALL: [SyncState; 5] = [
        SyncState::InSync,
        SyncState::PushPending,
        SyncState::Conflict,
        SyncState::Error,
        SyncState::OutOfScope,
    ];

    /// The stored and query-string name (`push_pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::InSync => "in_sync",
            SyncState::PushPending => "push_pending",
            SyncState::Conflict => "conflict",
            SyncState::Error => "error",
            SyncState::OutOfScope => "out_of_scope",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The label shown to a person (`push pending`).
    pub fn label(self) -> &'static str {
        match self {
            SyncState::InSync => "in sync",
            SyncState::PushPending => "push pending",
            SyncState::Conflict => "conflict",
            SyncState::Error => "error",
            SyncState::OutOfScope => "out of scope",
        }
    }

    /// The part of the state the task itself decides, stored at every task write:
    /// `OutOfScope` (deleted, out of scope, or linked to nothing), `PushPending` (a field
    /// changed in CollabHub since it was last in sync) or `InSync`.
    pub fn of_task(t: &Task) -> SyncState {
        if t.deleted || t.out_of_scope || t.external.is_empty() {
            SyncState::OutOfScope
        } else if t.sync.values().any(crate::FieldSync::locally_pending) {
            SyncState::PushPending
        } else {
            SyncState::InSync
        }
    }

    /// The state from its stored inputs: the task's own part ([`of_task`](Self::of_task)),
    /// the count of failed or dead jobs (pushes of the task, inbound events of its objects)
    /// and the mask of fields in conflict ([`ConflictMask`]). Precedence: out of scope >
    /// error > conflict > push pending > in sync. The SQL stores' generated `sync_state`
    /// column is this `CASE`, in the same order.
    pub fn derive(base: SyncState, failures: u64, conflicts: ConflictMask) -> SyncState {
        if base == SyncState::OutOfScope {
            SyncState::OutOfScope
        } else if failures > 0 {
            SyncState::Error
        } else if conflicts.0 != 0 {
            SyncState::Conflict
        } else {
            base
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a task whose last `Set` decision in the ledger is a conflict, one bit per
/// field (in [`Field::ALL`] order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConflictMask(pub u64);

/// What a unit's ledger drafts do to one task's [`ConflictMask`]: the bits they decide
/// (every field with a `Set` draft) and, of those, the ones left in conflict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConflictDelta {
    /// Bits to keep from the stored mask (the fields no draft decided).
    pub keep: u64,
    /// Bits to set (fields whose last draft is a conflict).
    pub set: u64,
}

impl ConflictMask {
    /// The bit of a field.
    pub fn bit(field: Field) -> u64 {
        Field::ALL
            .iter()
            .position(|f| *f == field)
            .map_or(0, |i| 1 << i)
    }

    /// The mask a task's whole ledger leaves (for a backfill, and for the memory store).
    pub fn of_entries<'a>(entries: impl IntoIterator<Item = &'a LedgerEntry>) -> ConflictMask {
        ConflictMask(ConflictDelta::of(entries.into_iter().map(|e| &e.record), None).set)
    }

    /// The mask after a delta.
    pub fn apply(self, d: ConflictDelta) -> ConflictMask {
        ConflictMask((self.0 & d.keep) | d.set)
    }
}

impl ConflictDelta {
    /// The delta of `drafts` (in order) for `task`, or for every draft when `task` is
    /// `None`. A draft that is not a `Set` of a field decides nothing.
    pub fn of<'a>(
        drafts: impl IntoIterator<Item = &'a LedgerDraft>,
        task: Option<TaskId>,
    ) -> ConflictDelta {
        let mut decided = 0u64;
        let mut set = 0u64;
        for d in drafts {
            if task.is_some_and(|t| t != d.task_id) {
                continue;
            }
            if let (Op::Set, Some(f)) = (d.op, d.field) {
                let bit = ConflictMask::bit(f);
                decided |= bit;
                if d.outcome == Outcome::Conflict {
                    set |= bit;
                } else {
                    set &= !bit;
                }
            }
        }
        ConflictDelta {
            keep: !decided,
            set,
        }
    }

    /// Whether it changes no mask.
    pub fn is_noop(&self) -> bool {
        self.keep == u64::MAX && self.set == 0
    }
}

/// The order of a task list. Each is a keyset over an index: ties are broken by task id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskSort {
    /// Most recently changed first (the console's default). A task changed during a walk
    /// moves ahead of the cursor: it is not repeated, and shows on the next walk.
    Updated,
    /// By task id, ascending (time-ordered UUIDs: oldest first): the API's default, and the
    /// order to walk every task in, since a task's id never changes (new tasks come last).
    #[default]
    Id,
}

impl TaskSort {
    /// The query-string name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskSort::Updated => "updated",
            TaskSort::Id => "id",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [TaskSort::Updated, TaskSort::Id]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Who a task is assigned to, as a filter.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AssigneeFilter {
    /// Unassigned tasks (`none` in a query string).
    Unassigned,
    /// Tasks assigned to this account id.
    Account(String),
}

impl AssigneeFilter {
    /// `none` is [`Unassigned`](Self::Unassigned), anything else an account id.
    pub fn parse(s: &str) -> Self {
        if s == "none" {
            AssigneeFilter::Unassigned
        } else {
            AssigneeFilter::Account(s.to_owned())
        }
    }
}

/// One page of a workspace's tasks: filters, order, size and where to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskQuery {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// At most this many tasks; 0 means [`TaskQuery::DEFAULT_LIMIT`]; above
    /// [`TaskQuery::MAX_LIMIT`] is refused (`Invalid`).
    pub limit: usize,
    /// Where to start: the `next_cursor` of the previous page, under the same filters and sort.
    pub cursor: Option<TaskCursor>,
    /// Only tasks in a status of this name (exact).
    pub status: Option<String>,
    /// Only tasks assigned to this account, or unassigned.
    pub assignee: Option<AssigneeFilter>,
    /// Only tasks linked to an object of this integration.
    pub integration: Option<IntegrationId>,
    /// Only tasks in this sync state.
    pub sync_state: Option<SyncState>,
    /// Only tasks changed at or after this time.
    pub updated_since: Option<OffsetDateTime>,
    /// Only tasks whose title contains this text (case-insensitive substring).
    pub search: Option<String>,
    /// The order.
    pub sort: TaskSort,
}

impl TaskQuery {
    /// The limit applied when `limit` is 0.
    pub const DEFAULT_LIMIT: usize = 100;
    /// The largest page.
    pub const MAX_LIMIT: usize = 1000;

    /// The first page of a workspace's tasks, unfiltered, in id order.
    pub fn new(workspace_id: WorkspaceId) -> Self {
        Self {
            workspace_id,
            limit: 0,
            cursor: None,
            status: None,
            assignee: None,
            integration: None,
            sync_state: None,
            updated_since: None,
            search: None,
            sort: TaskSort::Id,
        }
    }

    /// The effective limit: `Invalid` above [`MAX_LIMIT`](Self::MAX_LIMIT).
    pub fn effective_limit(&self) -> Result<usize, StoreError> {
        match self.limit {
            0 => Ok(Self::DEFAULT_LIMIT),
            n if n > Self::MAX_LIMIT => Err(InvalidInput::new(
                "limit",
                format!("{n} is above the maximum of {}", Self::MAX_LIMIT),
            )
            .into()),
            n => Ok(n),
        }
    }

    /// The search text, trimmed; `None` when empty.
    pub fn search_text(&self) -> Option<&str> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Checks the query before a store runs it: the limit, and a cursor made under these
    /// filters and this sort (`Invalid` otherwise). Returns the effective limit and the
    /// position to start after.
    pub fn checked(&self) -> Result<(usize, Option<&TaskCursor>), StoreError> {
        let limit = self.effective_limit()?;
        if let Some(c) = &self.cursor
            && (c.sort != self.sort || c.filters != self.fingerprint())
        {
            return Err(InvalidInput::new(
                "cursor",
                "it was made for other filters or another order; start from the first page",
            )
            .into());
        }
        Ok((limit, self.cursor.as_ref()))
    }

    /// A digest of the workspace, filters and sort, carried in cursors so that a cursor used
    /// under other filters is refused rather than silently skipping tasks.
    fn fingerprint(&self) -> [u8; 8] {
        let mut h = Sha256::new();
        let assignee = match &self.assignee {
            None => String::new(),
            Some(AssigneeFilter::Unassigned) => "\u{1}none".to_owned(),
            Some(AssigneeFilter::Account(a)) => format!("\u{2}{a}"),
        };
        let parts = [
            self.workspace_id.as_str().to_owned(),
            self.status
                .clone()
                .map(|s| format!("+{s}"))
                .unwrap_or_default(),
            assignee,
            self.integration.map(|i| i.to_string()).unwrap_or_default(),
            self.sync_state
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            self.updated_since
                .map(|t| t.unix_timestamp_nanos().to_string())
                .unwrap_or_default(),
            self.search_text()
                .map(str::to_lowercase)
                .unwrap_or_default(),
            self.sort.as_str().to_owned(),
        ];
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        let d = h.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&d[..8]);
        out
    }

    /// The cursor to continue after `(updated_at, id)`, the sort key of a page's last task
    /// as the store holds it (its column, not the document: PostgreSQL keeps microseconds).
    pub fn cursor_after(&self, updated_at: OffsetDateTime, id: TaskId) -> TaskCursor {
        TaskCursor {
            sort: self.sort,
            updated_at_ns: updated_at.unix_timestamp_nanos(),
            id,
            filters: self.fingerprint(),
        }
    }
}

/// Where a page of a [`TaskQuery`] starts: the sort key and id of the last task of the
/// previous page. Opaque to clients: its text form is base64url of its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskCursor {
    sort: TaskSort,
    updated_at_ns: i128,
    id: TaskId,
    filters: [u8; 8],
}

#[derive(Serialize, Deserialize)]
struct CursorWire {
    s: TaskSort,
    u: String,
    i: TaskId,
    f: String,
}

impl TaskCursor {
    /// The last task's `updated_at`.
    pub fn updated_at(&self) -> Result<OffsetDateTime, StoreError> {
        OffsetDateTime::from_unix_timestamp_nanos(self.updated_at_ns)
            .map_err(|_| InvalidInput::new("cursor", "time out of range").into())
    }

    /// The last task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The sort it continues.
    pub fn sort(&self) -> TaskSort {
        self.sort
    }

    /// Parses a cursor's text form; `Invalid` for anything this build did not make.
    pub fn parse(s: &str) -> Result<TaskCursor, StoreError> {
        let bad = || StoreError::from(InvalidInput::new("cursor", "not a cursor of this list"));
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| bad())?;
        let w: CursorWire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let updated_at_ns = w.u.parse::<i128>().map_err(|_| bad())?;
        let f = hex::decode(&w.f).map_err(|_| bad())?;
        let filters: [u8; 8] = f.try_into().map_err(|_| bad())?;
        Ok(TaskCursor {
            sort: w.s,
            updated_at_ns,
            id: w.i,
            filters,
        })
    }
}

impl fmt::Display for TaskCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = CursorWire {
            s: self.sort,
            u: self.updated_at_ns.to_string(),
            i: self.id,
            f: hex::encode(self.filters),
        };
        let json = serde_json::to_vec(&w).map_err(|_| fmt::Error)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(json))
    }
}

/// A task of a list, with its stored sync state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedTask {
    /// The task.
    pub task: Task,
    /// Its sync state.
    pub sync_state: SyncState,
}

/// One page of a [`TaskQuery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskList {
    /// The tasks, in the query's order.
    pub tasks: Vec<ListedTask>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<TaskCursor>,
}

/// How many distinct statuses [`crate::Store::task_statuses`] returns at most.
pub const MAX_STATUS_CHOICES: usize = 200;
/// How many assignees [`crate::Store::task_assignees`] returns at most.
pub const MAX_ASSIGNEE_CHOICES: usize = 500;

/// Whether a task passes the query's filters, but for the sync state, the integration (the
/// caller knows them) and the cursor: the memory store's scan, written once.
pub fn matches_fields(q: &TaskQuery, t: &Task) -> bool {
    q.status
        .as_deref()
        .is_none_or(|s| t.fields.status.name == s)
        && q.assignee
            .as_ref()
            .is_none_or(|a| match (a, &t.fields.assignee) {
                (AssigneeFilter::Unassigned, x) => x.is_none(),
                (AssigneeFilter::Account(id), Some(x)) => &x.account_id == id,
                (AssigneeFilter::Account(_), None) => false,
            })
        && q.updated_since.is_none_or(|since| t.updated_at >= since)
        && q.search_text()
            .is_none_or(|w| t.fields.title.to_lowercase().contains(&w.to_lowercase()))
}

/// A distinct status, for a filter's choices.
pub fn status_key(s: &Status) -> (crate::model::StatusCategory, String) {
    (s.category, s.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_filters() {
        let mut q = TaskQuery::new(WorkspaceId::new("w").unwrap());
        let c = q.cursor_after(OffsetDateTime::UNIX_EPOCH, TaskId::new());
        let parsed = TaskCursor::parse(&c.to_string()).unwrap();
        assert_eq!(parsed, c);
        q.cursor = Some(parsed);
        assert!(q.checked().is_ok());
        q.status = Some("Done".into());
        assert!(matches!(q.checked(), Err(StoreError::Invalid(_))));
        assert!(matches!(
            TaskCursor::parse("not-a-cursor"),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn precedence() {
        use SyncState::*;
        let c = ConflictMask(1);
        assert_eq!(SyncState::derive(OutOfScope, 1, c), OutOfScope);
        assert_eq!(SyncState::derive(PushPending, 1, c), Error);
        assert_eq!(SyncState::derive(PushPending, 0, c), Conflict);
        assert_eq!(
            SyncState::derive(PushPending, 0, ConflictMask(0)),
            PushPending
        );
        assert_eq!(SyncState::derive(InSync, 0, ConflictMask(0)), InSync);
    }
}
