//! Field policy: per integration and field, who owns the value and which way it may flow.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Field;

/// Which side's value wins a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// The provider (Jira, Asana) is the source of truth.
    Provider,
    /// The host application (CollabHub) is the source of truth.
    ///
    /// Spelled `"collabhub"` in JSON (and `owner=collabhub` in ledger rule text), as before the
    /// rename: stored policies and hashed ledger entries keep that spelling. `"host"` and
    /// `"collab_hub"` are accepted too.
    #[serde(rename = "collabhub", alias = "host", alias = "collab_hub")]
    Host,
}

/// Which way changes of a field may flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Provider changes flow in and CollabHub changes flow out.
    Both,
    /// Only provider changes flow in; CollabHub changes are not pushed.
    InboundOnly,
    /// Only CollabHub changes flow out; a provider change is reverted to CollabHub's value.
    OutboundOnly,
    /// The field is not synced.
    Off,
}

impl Direction {
    /// Provider changes may flow in.
    pub fn inbound(self) -> bool {
        matches!(self, Direction::Both | Direction::InboundOnly)
    }

    /// CollabHub changes may flow out.
    pub fn outbound(self) -> bool {
        matches!(self, Direction::Both | Direction::OutboundOnly)
    }
}

/// The rule for one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Owner.
    pub owner: Owner,
    /// Direction.
    pub direction: Direction,
}

impl fmt::Display for FieldRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = match self.owner {
            Owner::Provider => "provider",
            Owner::Host => "collabhub",
        };
        let dir = match self.direction {
            Direction::Both => "both",
            Direction::InboundOnly => "inbound_only",
            Direction::OutboundOnly => "outbound_only",
            Direction::Off => "off",
        };
        write!(f, "owner={owner};direction={dir}")
    }
}

/// The policy of an integration: one [`FieldRule`] per synced field.
///
/// ```
/// use ordonis_core::{Field, FieldPolicy, Owner};
/// let p = FieldPolicy::default();
/// assert_eq!(p.rule(Field::Status).owner, Owner::Provider);
/// assert_eq!(p.rule(Field::Title).owner, Owner::Host);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldPolicy {
    rules: BTreeMap<Field, FieldRule>,
}

impl Default for FieldPolicy {
    /// The provider owns status and assignee; CollabHub owns title, description, priority and
    /// due date; every direction is both.
    fn default() -> Self {
        let mut rules = BTreeMap::new();
        for f in Field::ALL {
            let owner = match f {
                Field::Status | Field::Assignee => Owner::Provider,
                _ => Owner::Host,
            };
            rules.insert(
                f,
                FieldRule {
                    owner,
                    direction: Direction::Both,
                },
            );
        }
        Self { rules }
    }
}

impl FieldPolicy {
    /// The rule for a field.
    pub fn rule(&self, field: Field) -> FieldRule {
        self.rules.get(&field).copied().unwrap_or(FieldRule {
            owner: Owner::Host,
            direction: Direction::Off,
        })
    }

    /// Replaces the rule for a field; builder style.
    pub fn with(mut self, field: Field, owner: Owner, direction: Direction) -> Self {
        self.rules.insert(field, FieldRule { owner, direction });
        self
    }

    /// Checks that every rule is coherent: a provider-owned field cannot be outbound-only,
    /// since a CollabHub request to it becomes the value only when the provider confirms it,
    /// and confirmations flow in.
    pub fn validate(&self) -> Result<(), crate::error::InvalidInput> {
        for (field, rule) in &self.rules {
            if rule.owner == Owner::Provider && rule.direction == Direction::OutboundOnly {
                return Err(crate::error::InvalidInput::new(
                    format!("field_policy.{field}"),
                    "a provider-owned field cannot be outbound_only",
                ));
            }
        }
        Ok(())
    }

    /// Merges a partial policy (fields not named keep their default).
    pub fn merged(mut self, overrides: &BTreeMap<Field, FieldRule>) -> Self {
        for (f, r) in overrides {
            self.rules.insert(*f, *r);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_say_which_way_changes_flow() {
        let table = [
            (Direction::Both, true, true),
            (Direction::InboundOnly, true, false),
            (Direction::OutboundOnly, false, true),
            (Direction::Off, false, false),
        ];
        for (d, inbound, outbound) in table {
            assert_eq!(d.inbound(), inbound, "{d:?} inbound");
            assert_eq!(d.outbound(), outbound, "{d:?} outbound");
        }
    }

    #[test]
    fn with_replaces_one_rule_and_validate_refuses_an_outbound_only_provider_field() {
        let p = FieldPolicy::default().with(Field::Title, Owner::Provider, Direction::InboundOnly);
        assert_eq!(
            p.rule(Field::Title),
            FieldRule {
                owner: Owner::Provider,
                direction: Direction::InboundOnly
            }
        );
        assert_eq!(
            p.rule(Field::Description),
            FieldPolicy::default().rule(Field::Description)
        );
        assert_eq!(p.validate(), Ok(()));
        let bad = p.with(Field::Status, Owner::Provider, Direction::OutboundOnly);
        let e = bad.validate().unwrap_err();
        assert_eq!(e.what, "field_policy.status");
        // CollabHub may own an outbound-only field.
        let ok = FieldPolicy::default().with(Field::DueDate, Owner::Host, Direction::OutboundOnly);
        assert_eq!(ok.validate(), Ok(()));
    }

    #[test]
    fn host_owner_keeps_its_stored_spelling() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&Owner::Host)?, r#""collabhub""#);
        for spelling in [r#""collabhub""#, r#""host""#, r#""collab_hub""#] {
            assert_eq!(serde_json::from_str::<Owner>(spelling)?, Owner::Host);
        }
        let rule = FieldRule {
            owner: Owner::Host,
            direction: Direction::Both,
        };
        assert_eq!(rule.to_string(), "owner=collabhub;direction=both");
        Ok(())
    }
}
