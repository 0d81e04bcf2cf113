//! Agent sessions: an agent's work on a task for a person, as Linear's public model has it.
//!
//! A session holds typed activities (the agent's `thought`s, `action`s, `elicitation`s,
//! `response`s and `error`s, and the person's `prompt`s) and artifacts. Every activity and
//! every state change is a ledger entry attributed to the agent acting for its principal, so
//! a host can prove later what the agent did, in what order, for whom. The activities'
//! contents live in those entries; the session row keeps what the engine decides on (its
//! state, the ids of its activities for idempotent appends, its artifacts and where it is
//! shown in the provider).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::actor::{Actor, ActorKind};
use crate::error::InvalidInput;
use crate::ids::{CommentId, IntegrationId, SessionId, TaskId, WorkspaceId};

/// Where a session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// The agent is working.
    Active,
    /// The agent asked a question (an `elicitation`) and waits for the person.
    AwaitingInput,
    /// Done.
    Complete,
    /// The agent reported an error.
    Error,
    /// No activity for longer than the engine's
    /// [`session_stale_after`](crate::EngineConfig::session_stale_after).
    Stale,
}

impl SessionState {
    /// Every state.
    pub const ALL: [SessionState; 5] = [
        SessionState::Active,
        SessionState::AwaitingInput,
        SessionState::Complete,
        SessionState::Error,
        SessionState::Stale,
    ];

    /// The lowercase name (`awaiting_input`).
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Active => "active",
            SessionState::AwaitingInput => "awaiting_input",
            SessionState::Complete => "complete",
            SessionState::Error => "error",
            SessionState::Stale => "stale",
        }
    }

    /// The state a name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// How the state reads in a provider ("awaiting input").
    pub fn label(self) -> &'static str {
        match self {
            SessionState::Active => "working",
            SessionState::AwaitingInput => "awaiting input",
            SessionState::Complete => "complete",
            SessionState::Error => "error",
            SessionState::Stale => "stale",
        }
    }
}

/// The type of an activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// The agent's reasoning (kept in CollabHub and the ledger).
    Thought,
    /// A tool call: `action`, `parameter`, `result` (kept in CollabHub and the ledger).
    Action,
    /// A question to the person: the session waits for input.
    Elicitation,
    /// The agent's answer.
    Response,
    /// The agent failed.
    Error,
    /// The person's reply (a comment in the provider while the session waits, or through
    /// the API).
    Prompt,
}

impl ActivityKind {
    /// Every kind.
    pub const ALL: [ActivityKind; 6] = [
        ActivityKind::Thought,
        ActivityKind::Action,
        ActivityKind::Elicitation,
        ActivityKind::Response,
        ActivityKind::Error,
        ActivityKind::Prompt,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Thought => "thought",
            ActivityKind::Action => "action",
            ActivityKind::Elicitation => "elicitation",
            ActivityKind::Response => "response",
            ActivityKind::Error => "error",
            ActivityKind::Prompt => "prompt",
        }
    }

    /// The kind a name stands for.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The kinds posted to the provider as comments by default.
    pub const POSTED_BY_DEFAULT: [ActivityKind; 3] = [
        ActivityKind::Response,
        ActivityKind::Elicitation,
        ActivityKind::Error,
    ];
}

/// What an activity says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityContent {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    /// The text (Markdown), for every kind but `action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// For an `action`: what the agent did (`search`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// For an `action`: with what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// For an `action`: what came of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// Longest text of one part of an activity, in bytes.
pub const MAX_ACTIVITY_BYTES: usize = 64 * 1024;

impl ActivityContent {
    /// Checks an activity: an `action` names its action, every other kind has a body; no
    /// part longer than [`MAX_ACTIVITY_BYTES`] or holding control characters but newlines
    /// and tabs.
    pub fn check(&self) -> Result<(), InvalidInput> {
        let parts = [
            ("body", &self.body),
            ("action", &self.action),
            ("parameter", &self.parameter),
            ("result", &self.result),
        ];
        for (name, v) in parts {
            if let Some(v) = v {
                if v.len() > MAX_ACTIVITY_BYTES {
                    return Err(InvalidInput::new(
                        name,
                        format!("longer than {MAX_ACTIVITY_BYTES} bytes"),
                    ));
                }
                if v.chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
                {
                    return Err(InvalidInput::new(
                        name,
                        "control characters are not allowed",
                    ));
                }
            }
        }
        match self.kind {
            ActivityKind::Action if self.action.as_deref().is_none_or(|a| a.trim().is_empty()) => {
                Err(InvalidInput::new("action", "an action names what it did"))
            }
            ActivityKind::Action => Ok(()),
            _ if self.body.as_deref().is_none_or(|b| b.trim().is_empty()) => Err(
                InvalidInput::new("body", format!("a {} needs a body", self.kind.as_str())),
            ),
            _ => Ok(()),
        }
    }

    /// A digest of the content: a retried append with the same id must say the same thing.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            Some(self.kind.as_str()),
            self.body.as_deref(),
            self.action.as_deref(),
            self.parameter.as_deref(),
            self.result.as_deref(),
        ] {
            match part {
                Some(p) => {
                    h.update([1]);
                    h.update((p.len() as u64).to_be_bytes());
                    h.update(p.as_bytes());
                }
                None => h.update([0]),
            }
        }
        hex::encode(h.finalize())
    }
}

/// One activity as the session row keeps it (its content is in its ledger entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRef {
    /// The client's id of the activity (or one the engine made).
    pub id: String,
    /// Its type.
    pub kind: ActivityKind,
    /// [`ActivityContent::digest`].
    pub digest: String,
    /// The comment it was posted as, for the kinds posted to the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// When it was appended.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Something the agent produced (a pull request, a document, a build).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Our id of it.
    pub id: uuid::Uuid,
    /// What it is called.
    pub title: String,
    /// Where it is (`https`).
    pub url: String,
    /// What it is (`pull_request`, `document`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A link the session is shown as in the provider (the session's own, or an artifact's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionLink {
    /// The link's stable id (`ordonis:session:<id>`, `ordonis:artifact:<id>`).
    pub global_id: String,
    /// The provider's id of it, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The title and URL it should show.
    pub title: String,
    /// Where it points.
    pub url: String,
    /// Waiting for a push.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Why the provider refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An agent's session on a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSession {
    /// Id.
    pub id: SessionId,
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// The task worked on.
    pub task_id: TaskId,
    /// Optimistic-concurrency revision.
    pub revision: u64,
    /// The agent, with whom it acts for (`on_behalf_of`, the person accountable last).
    pub agent: Actor,
    /// Where it stands.
    pub state: SessionState,
    /// The integration it is shown through (the task's link when opened), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    /// When it was opened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When its last activity was appended (what staleness is measured from).
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity_at: OffsetDateTime,
    /// Its activities, oldest first.
    #[serde(default)]
    pub activities: Vec<ActivityRef>,
    /// Its artifacts, oldest first.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// The links it is shown as in the provider.
    #[serde(default)]
    pub links: Vec<SessionLink>,
}

impl AgentSession {
    /// Whether a push has links of it to make or update.
    pub fn has_pending_links(&self) -> bool {
        self.links.iter().any(|l| l.pending)
    }

    /// The person accountable: the end of the agent's delegation chain.
    pub fn principal(&self) -> Option<&crate::actor::Principal> {
        self.agent.on_behalf_of.last()
    }
}

/// A session write in a unit of work (inserted when `expected_revision` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionWrite {
    /// The new state (its `revision` is the new revision).
    pub session: AgentSession,
    /// The revision it was computed from; `None` inserts it.
    pub expected_revision: Option<u64>,
}

/// Checks that an actor may hold a session: an agent that says whom it acts for.
pub fn check_session_actor(actor: &Actor) -> Result<(), InvalidInput> {
    actor.validate()?;
    if actor.kind != ActorKind::Agent {
        return Err(InvalidInput::new(
            "actor.kind",
            "only an agent holds a session (a person's reply is a prompt)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_checks_and_digests() {
        let thought = ActivityContent {
            kind: ActivityKind::Thought,
            body: Some("look at the login code".into()),
            action: None,
            parameter: None,
            result: None,
        };
        assert!(thought.check().is_ok());
        let mut empty = thought.clone();
        empty.body = Some("  ".into());
        assert!(empty.check().is_err());
        let action = ActivityContent {
            kind: ActivityKind::Action,
            body: None,
            action: Some("search".into()),
            parameter: Some("login".into()),
            result: None,
        };
        assert!(action.check().is_ok());
        let mut nameless = action.clone();
        nameless.action = None;
        assert!(nameless.check().is_err());
        // The digest tells the parts apart: a body moved to the parameter differs.
        let mut moved = action.clone();
        moved.parameter = None;
        moved.result = Some("login".into());
        assert_ne!(action.digest(), moved.digest());
        assert_eq!(action.digest(), action.clone().digest());
    }
}
