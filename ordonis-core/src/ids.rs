//! Identifiers. Ordonis-generated ids are UUID v7 (time-ordered, so B-tree friendly);
//! the workspace id is the host's own string id, because CollabHub already has one.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::InvalidInput;

/// The host's id of a workspace (tenant). Non-empty, at most 128 bytes, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// Validates and wraps a host workspace id.
    ///
    /// ```
    /// use ordonis_core::WorkspaceId;
    /// assert!(WorkspaceId::new("acme").is_ok());
    /// assert!(WorkspaceId::new("").is_err());
    /// ```
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidInput> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "workspace_id",
                "must be 1..=128 bytes without control characters",
            ));
        }
        Ok(Self(id))
    }

    /// A workspace id for a new workspace: [`WorkspaceId::new`]'s rules and
    /// [`WorkspaceId::check_new`]'s.
    ///
    /// ```
    /// use ordonis_core::WorkspaceId;
    /// assert!(WorkspaceId::create("acme-corp_2.eu:prod@1").is_ok());
    /// assert!(WorkspaceId::create("\u{0430}cme").is_err()); // Cyrillic а
    /// assert!(WorkspaceId::create("acme\u{200b}").is_err()); // zero-width space
    /// ```
    pub fn create(id: impl Into<String>) -> Result<Self, InvalidInput> {
        let ws = Self::new(id)?;
        ws.check_new()?;
        Ok(ws)
    }

    /// Whether this id may name a new workspace: only the characters of
    /// [`NEW_WORKSPACE_ID_CHARSET`], so that two ids that look the same are the same id (no
    /// Cyrillic or Greek look-alikes, no zero-width, format or bidi controls, and every id is
    /// NFC-normalized as it stands). Ids of workspaces created before this rule still load
    /// and match through [`WorkspaceId::new`]; only creating one is refused.
    pub fn check_new(&self) -> Result<(), InvalidInput> {
        match self.0.chars().find(|c| !new_workspace_id_char(*c)) {
            None => Ok(()),
            Some(c) => Err(InvalidInput::new(
                "workspace_id",
                format!(
                    "a new workspace id holds only {NEW_WORKSPACE_ID_CHARSET}; it has {:?} \
                     (U+{:04X}), which could make it look like another workspace",
                    c, c as u32
                ),
            )),
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The characters a new workspace id may hold ([`WorkspaceId::check_new`]).
pub const NEW_WORKSPACE_ID_CHARSET: &str = "ASCII letters and digits, '-', '_', '.', ':' and '@'";

fn new_workspace_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
}

impl TryFrom<String> for WorkspaceId {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<WorkspaceId> for String {
    fn from(value: WorkspaceId) -> Self {
        value.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh time-ordered (UUID v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidInput;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| InvalidInput::new(stringify!($name), "not a UUID"))
            }
        }
    };
}

uuid_id!(
    /// An integration: one provider account connected to one workspace.
    IntegrationId
);
uuid_id!(
    /// An internal task.
    TaskId
);
uuid_id!(
    /// A row of the inbound webhook inbox.
    EventId
);
uuid_id!(
    /// A row of the outbound push queue.
    OutboxId
);
uuid_id!(
    /// A comment on a task, in CollabHub's store (ours or a provider's).
    CommentId
);
uuid_id!(
    /// An agent's session on a task.
    SessionId
);
uuid_id!(
    /// One internal action (a task change made through the task API).
    ActionId
);
