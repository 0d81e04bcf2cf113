//! Who made a change: a person, an AI agent (and whom it acted for), a service or the system.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;

/// The kind of an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person.
    Human,
    /// An AI agent; it must say whom it acted for.
    Agent,
    /// A non-AI integration or automation (a provider rule, the sync worker).
    Service,
    /// Ordonis itself.
    System,
}

/// One link of an agent's delegation chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// Kind of the principal.
    pub kind: ActorKind,
    /// Its id.
    pub id: String,
    /// The delegation record (agent assignment, OAuth client id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Display name, when known: shown in the attribution line of a comment posted for
    /// them, and kept out of the hashed ledger leaf like the actor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The maximum depth of an `on_behalf_of` chain.
pub const MAX_DELEGATION_DEPTH: usize = 8;

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// Kind.
    pub kind: ActorKind,
    /// Id: an internal user or agent id, or a provider account id.
    pub id: String,
    /// Display name, when known (kept out of the hashed ledger leaf).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Where the actor acted: `internal`, or a provider name when the id is a provider account.
    #[serde(default = "internal")]
    pub provider: String,
    /// For a principal acting through a provider account mapped to them in the people
    /// directory: the account (the evidence; `id` is then the principal, `provider` where
    /// they acted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// For an agent: whom it acted for, immediate principal first, ending in a human or service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_behalf_of: Vec<Principal>,
}

fn internal() -> String {
    "internal".to_owned()
}

impl Actor {
    /// A person acting in CollabHub.
    pub fn human(id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Human,
            id: id.into(),
            display_name: None,
            provider: internal(),
            account: None,
            on_behalf_of: Vec::new(),
        }
    }

    /// An AI agent acting for someone.
    ///
    /// ```
    /// use ordonis_core::{Actor, ActorKind, Principal};
    /// let a = Actor::agent("agt_7", vec![Principal { kind: ActorKind::Human, id: "usr_1".into(), grant: None, display_name: None }]);
    /// assert!(a.validate().is_ok());
    /// assert!(Actor::agent("agt_7", vec![]).validate().is_err());
    /// ```
    pub fn agent(id: impl Into<String>, on_behalf_of: Vec<Principal>) -> Self {
        Self {
            kind: ActorKind::Agent,
            id: id.into(),
            display_name: None,
            provider: internal(),
            account: None,
            on_behalf_of,
        }
    }

    /// A provider account (the user named in a webhook).
    pub fn provider_account(provider: &str, account_id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Human,
            id: account_id.into(),
            display_name: None,
            provider: provider.to_owned(),
            account: None,
            on_behalf_of: Vec::new(),
        }
    }

    /// A named service (the sync worker, a provider automation).
    pub fn service(id: impl Into<String>) -> Self {
        Self {
            kind: ActorKind::Service,
            id: id.into(),
            display_name: None,
            provider: internal(),
            account: None,
            on_behalf_of: Vec::new(),
        }
    }

    /// Ordonis itself.
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            id: "ordonis".to_owned(),
            display_name: None,
            provider: internal(),
            account: None,
            on_behalf_of: Vec::new(),
        }
    }

    /// With a display name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Checks the attribution rules: an id; an agent's chain is non-empty and ends in a human
    /// or service; at most [`MAX_DELEGATION_DEPTH`] links; no id repeats.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.id.trim().is_empty() {
            return Err(InvalidInput::new("actor.id", "must not be empty"));
        }
        if self.kind == ActorKind::Agent {
            match self.on_behalf_of.last() {
                None => {
                    return Err(InvalidInput::new(
                        "actor.on_behalf_of",
                        "an agent must say whom it acted for",
                    ));
                }
                Some(root) if !matches!(root.kind, ActorKind::Human | ActorKind::Service) => {
                    return Err(InvalidInput::new(
                        "actor.on_behalf_of",
                        "the chain must end in a human or a service",
                    ));
                }
                Some(_) => {}
            }
        }
        if self.on_behalf_of.len() > MAX_DELEGATION_DEPTH {
            return Err(InvalidInput::new(
                "actor.on_behalf_of",
                "chain deeper than 8",
            ));
        }
        let mut seen = vec![self.id.as_str()];
        for p in &self.on_behalf_of {
            if p.id.trim().is_empty() || seen.contains(&p.id.as_str()) {
                return Err(InvalidInput::new(
                    "actor.on_behalf_of",
                    "ids must be non-empty and not repeat",
                ));
            }
            seen.push(&p.id);
        }
        Ok(())
    }
}
