//! Per-field sync state: what makes replays idempotent and echoes recognisable.

use serde::{Deserialize, Serialize};

use crate::ids::ActionId;
use crate::model::FieldValue;

/// The version of a provider-side value: the provider's time for it, then the identity of the
/// event that carried it as a tie-break. Ordered, so any delivery order converges on the newest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceVersion {
    /// Provider time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Identity of the event or fetch that carried the value.
    pub event: String,
}

impl SourceVersion {
    /// A version from a provider time and an event identity.
    pub fn new(at_ms: i64, event: impl Into<String>) -> Self {
        Self {
            at_ms,
            event: event.into(),
        }
    }
}

/// A CollabHub-side change waiting for (or awaiting confirmation of) its push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The value CollabHub wants the provider to hold.
    pub value: FieldValue,
    /// The internal action that asked for it.
    pub action: ActionId,
    /// The provider accepted the push (its echo may still be on the way).
    #[serde(default)]
    pub acked: bool,
    /// The same value in the form the provider stores and reports it (a description after
    /// the provider's rich-text round trip): its echo is recognised in this form too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub echo_as: Vec<FieldValue>,
    /// Values the provider passes through while applying this one (intermediate workflow
    /// statuses): their echoes are ours and leave this value awaited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passes: Vec<FieldValue>,
}

impl Intent {
    /// A new, not yet pushed intent.
    pub fn new(value: FieldValue, action: ActionId) -> Self {
        Self {
            value,
            action,
            acked: false,
            echo_as: Vec::new(),
            passes: Vec::new(),
        }
    }
}

/// A status asked for by its category's generic name ("Done", or no name) is echoed by the
/// provider under its own name ("Completed", "Closed"): matched by category.
fn generic_status_match(sent: &FieldValue, echo: &FieldValue) -> bool {
    use crate::model::StatusCategory;
    let (FieldValue::Status(s), FieldValue::Status(e)) = (sent, echo) else {
        return false;
    };
    let generic = match s.category {
        StatusCategory::Todo => "to do",
        StatusCategory::InProgress => "in progress",
        StatusCategory::Done => "done",
    };
    let name = s.name.trim();
    s.category == e.category && (name.is_empty() || name.eq_ignore_ascii_case(generic))
}

/// At most this many pushed values are remembered while their echoes are outstanding.
pub(crate) const MAX_SENT: usize = 8;

/// Sync state of one field of one task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSync {
    /// Newest provider version seen for this field; older or equal ones are no-ops.
    #[serde(default)]
    pub version: Option<SourceVersion>,
    /// The last value known to be equal on both sides ("last in sync"). A provider value that
    /// differs from it means the provider side changed.
    #[serde(default)]
    pub base: Option<FieldValue>,
    /// A CollabHub change not yet pushed (coalesced: the newest wins).
    #[serde(default)]
    pub want: Option<Intent>,
    /// Values pushed and not yet echoed back, oldest first.
    #[serde(default)]
    pub sent: Vec<Intent>,
}

impl FieldSync {
    /// True when CollabHub changed the field since it was last in sync.
    pub fn locally_pending(&self) -> bool {
        self.want.is_some() || !self.sent.is_empty()
    }

    /// The position of a sent value equal to `value` (as sent, or in a form the provider
    /// was expected to report it in), if any.
    pub fn sent_position(&self, value: &FieldValue) -> Option<usize> {
        self.sent.iter().position(|i| {
            i.value.same_as(value)
                || i.echo_as.iter().any(|e| e.same_as(value))
                || generic_status_match(&i.value, value)
        })
    }

    /// The position of a sent value whose push passes through `value` on the way.
    pub fn passing_position(&self, value: &FieldValue) -> Option<usize> {
        self.sent
            .iter()
            .position(|i| i.passes.iter().any(|p| p.same_as(value)))
    }

    /// Records a pushed value, forgetting the oldest once more than `MAX_SENT` (8) are kept.
    pub fn record_sent(&mut self, intent: Intent) {
        self.sent.push(intent);
        if self.sent.len() > MAX_SENT {
            self.sent.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldValue;

    #[test]
    fn at_most_eight_sent_values_are_remembered_oldest_forgotten_first() {
        let mut st = FieldSync::default();
        let v = |i: usize| FieldValue::Title(format!("t{i}"));
        for i in 0..MAX_SENT {
            st.record_sent(Intent::new(v(i), ActionId::new()));
        }
        assert_eq!(st.sent.len(), MAX_SENT, "eight are kept");
        assert_eq!(st.sent[0].value, v(0));
        st.record_sent(Intent::new(v(MAX_SENT), ActionId::new()));
        assert_eq!(st.sent.len(), MAX_SENT);
        assert_eq!(st.sent[0].value, v(1), "the oldest went");
        assert_eq!(st.sent[MAX_SENT - 1].value, v(MAX_SENT));
    }
}
