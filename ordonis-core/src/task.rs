//! The internal task and its synced fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::ids::{TaskId, WorkspaceId};
use crate::model::{Assignee, Field, FieldValue, Priority, Status};
// Also reachable here for code inside the crate that names it by this path (store.rs).
pub(crate) use crate::model::ExternalRef;
use crate::sync_state::FieldSync;

/// The current values of a task's synced fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFields {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: Status,
    /// Assignee.
    pub assignee: Option<Assignee>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Due date.
    pub due_date: Option<Date>,
}

impl TaskFields {
    /// The value of one field.
    pub fn get(&self, field: Field) -> FieldValue {
        match field {
            Field::Title => FieldValue::Title(self.title.clone()),
            Field::Description => FieldValue::Description(self.description.clone()),
            Field::Status => FieldValue::Status(self.status.clone()),
            Field::Assignee => FieldValue::Assignee(self.assignee.clone()),
            Field::Priority => FieldValue::Priority(self.priority.clone()),
            Field::DueDate => FieldValue::DueDate(self.due_date),
        }
    }

    /// Sets one field.
    pub fn set(&mut self, value: FieldValue) {
        match value {
            FieldValue::Title(v) => self.title = v,
            FieldValue::Description(v) => self.description = v,
            FieldValue::Status(v) => self.status = v,
            FieldValue::Assignee(v) => self.assignee = v,
            FieldValue::Priority(v) => self.priority = v,
            FieldValue::DueDate(v) => self.due_date = v,
        }
    }
}

/// An internal task, with its synced fields and per-field sync state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Id.
    pub id: TaskId,
    /// Owning workspace.
    pub workspace_id: WorkspaceId,
    /// Optimistic-concurrency revision: a store commits a change only when the stored revision
    /// still equals the one the change was computed from.
    pub revision: u64,
    /// Current field values.
    pub fields: TaskFields,
    /// Per-field sync state: source version, last in-sync value, pending pushes.
    #[serde(default)]
    pub sync: BTreeMap<Field, FieldSync>,
    /// Where the task lives in providers (the first one is the one it syncs with).
    #[serde(default)]
    pub external: Vec<ExternalRef>,
    /// Deleted in the provider: kept as a tombstone, never hard-deleted.
    #[serde(default)]
    pub deleted: bool,
    /// Out of the integration's scope (the provider still has the object, but the scope no
    /// longer covers it): not synced either way until it is back in scope.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub out_of_scope: bool,
    /// Its create in a provider, for a task created from CollabHub with a link to make
    /// ([`crate::Engine::create_task`]): pending until the issue exists, then `created`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<crate::create::TaskCreate>,
    /// Last change, internal or inbound.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Task {
    /// A new empty task in a workspace.
    pub fn new(workspace_id: WorkspaceId) -> Self {
        Self {
            id: TaskId::new(),
            workspace_id,
            revision: 0,
            fields: TaskFields::default(),
            sync: BTreeMap::new(),
            external: Vec::new(),
            deleted: false,
            out_of_scope: false,
            create: None,
            updated_at: OffsetDateTime::now_utc(),
        }
    }

    /// The external reference the task syncs with, if any.
    pub fn link(&self) -> Option<&ExternalRef> {
        self.external.first()
    }

    /// The sync state of a field (default when the field never synced).
    pub fn sync_state(&self, field: Field) -> FieldSync {
        self.sync.get(&field).cloned().unwrap_or_default()
    }

    /// True when some field has a local change waiting to be pushed.
    pub fn has_unpushed_changes(&self) -> bool {
        self.sync.values().any(|s| s.want.is_some())
    }
}
