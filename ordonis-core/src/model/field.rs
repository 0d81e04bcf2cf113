//! Field values: the synced fields of a task and the values each can hold.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

/// A synced task field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The summary / name.
    Title,
    /// The body text.
    Description,
    /// Workflow status.
    Status,
    /// Who the task is assigned to.
    Assignee,
    /// Priority.
    Priority,
    /// Due date.
    DueDate,
}

impl Field {
    /// Every synced field, in a fixed order.
    pub const ALL: [Field; 6] = [
        Field::Title,
        Field::Description,
        Field::Status,
        Field::Assignee,
        Field::Priority,
        Field::DueDate,
    ];

    /// The snake_case name used in JSON and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Description => "description",
            Field::Status => "status",
            Field::Assignee => "assignee",
            Field::Priority => "priority",
            Field::DueDate => "due_date",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The normalized status category every provider maps into.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StatusCategory {
    /// Not started.
    #[default]
    Todo,
    /// Started.
    InProgress,
    /// Finished.
    Done,
}

/// Status: the normalized category plus the provider's own name for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    /// Normalized category.
    pub category: StatusCategory,
    /// The provider's status name ("In Review"); empty when only the category is known.
    #[serde(default)]
    pub name: String,
}

impl Status {
    /// A status with a category and a name.
    pub fn new(category: StatusCategory, name: impl Into<String>) -> Self {
        Self {
            category,
            name: name.into(),
        }
    }
}

/// The person (or account) a task is assigned to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignee {
    /// The provider's account id (Jira `accountId`, Asana user gid) or internal user id.
    pub account_id: String,
    /// Display name, when known.
    #[serde(default)]
    pub display_name: Option<String>,
    /// E-mail, when the provider shares it.
    #[serde(default)]
    pub email: Option<String>,
}

/// Normalized priority levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityLevel {
    /// Lowest.
    Lowest,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Highest.
    Highest,
}

/// Priority: the normalized level plus the provider's own name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Priority {
    /// Normalized level.
    pub level: PriorityLevel,
    /// The provider's name ("P1", "Blocker"); empty when only the level is known.
    #[serde(default)]
    pub name: String,
}

/// One field's value. Each variant names its field, so a patch cannot put a status into a title.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "field", content = "value", rename_all = "snake_case")]
pub enum FieldValue {
    /// Title.
    Title(String),
    /// Description (plain text).
    Description(String),
    /// Status.
    Status(Status),
    /// Assignee, `None` when unassigned.
    Assignee(Option<Assignee>),
    /// Priority, `None` when unset.
    Priority(Option<Priority>),
    /// Due date, `None` when unset.
    DueDate(Option<Date>),
}

impl FieldValue {
    /// The field this value belongs to.
    pub fn field(&self) -> Field {
        match self {
            FieldValue::Title(_) => Field::Title,
            FieldValue::Description(_) => Field::Description,
            FieldValue::Status(_) => Field::Status,
            FieldValue::Assignee(_) => Field::Assignee,
            FieldValue::Priority(_) => Field::Priority,
            FieldValue::DueDate(_) => Field::DueDate,
        }
    }

    /// Semantic equality: what a provider echoes back counts as the same value even when it
    /// adds detail we did not send (an assignee's display name, a status name's case,
    /// trailing whitespace a rich-text round trip adds).
    pub fn same_as(&self, other: &FieldValue) -> bool {
        fn name_or<T: PartialEq>(a: &str, b: &str, ca: T, cb: T) -> bool {
            if !a.is_empty() && !b.is_empty() {
                a.trim().eq_ignore_ascii_case(b.trim())
            } else {
                ca == cb
            }
        }
        match (self, other) {
            (FieldValue::Title(a), FieldValue::Title(b))
            | (FieldValue::Description(a), FieldValue::Description(b)) => {
                a.trim_end() == b.trim_end()
            }
            (FieldValue::Status(a), FieldValue::Status(b)) => {
                name_or(&a.name, &b.name, a.category, b.category)
            }
            (FieldValue::Assignee(a), FieldValue::Assignee(b)) => match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.account_id == b.account_id,
                _ => false,
            },
            (FieldValue::Priority(a), FieldValue::Priority(b)) => match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => name_or(&a.name, &b.name, a.level, b.level),
                _ => false,
            },
            (FieldValue::DueDate(a), FieldValue::DueDate(b)) => a == b,
            _ => false,
        }
    }
}

/// A set of field values, at most one per field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldPatch(BTreeMap<Field, FieldValue>);

impl FieldPatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a value; builder style.
    ///
    /// ```
    /// use ordonis_core::{FieldPatch, FieldValue, Field};
    /// let p = FieldPatch::new().with(FieldValue::Title("Fix login".into()));
    /// assert!(p.get(Field::Title).is_some());
    /// ```
    pub fn with(mut self, value: FieldValue) -> Self {
        self.set(value);
        self
    }

    /// Adds (or replaces) a value.
    pub fn set(&mut self, value: FieldValue) {
        self.0.insert(value.field(), value);
    }

    /// The value for a field, if present.
    pub fn get(&self, field: Field) -> Option<&FieldValue> {
        self.0.get(&field)
    }

    /// Removes a field's value.
    pub fn remove(&mut self, field: Field) -> Option<FieldValue> {
        self.0.remove(&field)
    }

    /// Values in field order.
    pub fn values(&self) -> impl Iterator<Item = &FieldValue> {
        self.0.values()
    }

    /// Fields present.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.0.keys().copied()
    }

    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of fields set.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl FromIterator<FieldValue> for FieldPatch {
    fn from_iter<I: IntoIterator<Item = FieldValue>>(iter: I) -> Self {
        let mut p = FieldPatch::new();
        for v in iter {
            p.set(v);
        }
        p
    }
}
