//! The value types the rest of the crate shares: field values, provider names and the keys of
//! provider objects. This module depends on nothing else in the crate but [`crate::ids`], so
//! tasks, sync state, providers, the ledger and VERA can all use it without importing each
//! other.

mod external;
mod field;

pub use external::{ExternalRef, ObjectKey, ObjectType, ProviderKind};
pub use field::{
    Assignee, Field, FieldPatch, FieldValue, Priority, PriorityLevel, Status, StatusCategory,
};
