//! Where things live in a provider: the provider's name and the keys of its objects.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::IntegrationId;

/// A provider's name: `jira`, `asana`, or an adapter's own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderKind(pub String);

impl ProviderKind {
    /// A provider kind from its name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The object kind of an external reference (Jira "issue", Asana "task").
pub type ObjectType = String;

/// Where a task lives in a provider: the object ([`ObjectKey`]) in an integration, and a
/// link to it. Its JSON is flat: `{integration_id, provider, external_id, object_type, url}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExternalRef {
    /// The integration the task syncs through.
    pub integration_id: IntegrationId,
    /// The provider.
    pub provider: ProviderKind,
    /// The object: the provider's id (Jira issue id, Asana gid) and type.
    #[serde(flatten)]
    pub key: ObjectKey,
    /// A browser link to the object, when known.
    #[serde(default)]
    pub url: Option<String>,
}

/// An object in a provider: its id and type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    /// The provider's id.
    pub external_id: String,
    /// The provider's object type (`issue`, `task`).
    pub object_type: ObjectType,
}

impl ObjectKey {
    /// An object key.
    pub fn new(external_id: impl Into<String>, object_type: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            object_type: object_type.into(),
        }
    }
}
