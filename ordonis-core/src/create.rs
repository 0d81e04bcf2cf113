//! Creating a task's issue (or Asana task) in the provider, exactly once: the optional
//! [`CreateProvider`] ability an adapter hands out through
//! [`Provider::creates`](crate::Provider::creates), and the create state a task carries
//! until its issue exists.
//!
//! No provider's create call takes an idempotency key, so a create carries a *marker* (our
//! task's id) where the provider keeps one without showing it (a Jira issue property, an
//! Asana task's `external.gid`). Before a create whose answer was lost is sent again, the
//! engine asks [`CreateProvider::find_created`] for the object carrying the marker among the
//! integration's own recent creations, and adopts it: exactly one issue exists after any
//! number of retries.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::ids::IntegrationId;
use crate::model::FieldPatch;
use crate::provider::{ProviderContext, RemoteTask};

/// Where to create a task's issue: the integration, and (each optional, else the
/// integration's `create` defaults) the project, the issue type and the parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLink {
    /// The integration to create it through.
    pub integration_id: IntegrationId,
    /// The project: a Jira project key, an Asana project gid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Jira issue type's name ("Task", "Sub-task"); Asana has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// The parent: a CollabHub task id (the parent's issue is used once it exists), or the
    /// provider's key or id of the parent issue or task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Where a task's create stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateState {
    /// Queued: a worker will create the issue.
    #[default]
    Pending,
    /// The issue exists and the task syncs with it.
    Created,
    /// The create job died (retries exhausted); replaying the job tries again.
    Failed,
    /// The provider refused it (a required field, a project or issue type it will not take):
    /// never retried, the reason is in `error` and in the ledger.
    Refused,
}

impl CreateState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            CreateState::Pending => "pending",
            CreateState::Created => "created",
            CreateState::Failed => "failed",
            CreateState::Refused => "refused",
        }
    }
}

/// A task's create in a provider: where, how far, and whether a create call may have
/// reached the provider without its answer reaching us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCreate {
    /// Where it is created.
    pub link: NewLink,
    /// How far it is.
    pub state: CreateState,
    /// Why it failed or was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A create call was started at this time (epoch ms) and its outcome is unknown: the
    /// next attempt looks for the marker from then on before creating again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_doubt_since_ms: Option<i64>,
}

/// What to create: the marker, the fields, and where.
#[derive(Clone, Copy, Debug)]
pub struct CreateDraft<'a> {
    /// Our task's id: kept with the object where the provider hides it (see the module docs).
    pub marker: &'a str,
    /// The fields to create it with. A field the create call cannot set (a Jira status other
    /// than the workflow's first) is left to the push that follows the create.
    pub fields: &'a FieldPatch,
    /// The project (Jira project key, Asana project gid), already defaulted by the engine
    /// from the integration's settings when the call named none.
    pub project: Option<&'a str>,
    /// The issue type's name (Jira).
    pub issue_type: Option<&'a str>,
    /// The parent's provider key or id, already resolved from a CollabHub task id.
    pub parent: Option<&'a str>,
}

/// The create abilities of a provider. Reached through
/// [`Provider::creates`](crate::Provider::creates); a provider without them cannot have
/// tasks created in it from CollabHub (the create is refused with that reason).
///
/// A refusal the provider will repeat (a required field no option fills, a project the token
/// cannot create in, an unknown issue type) is [`ProviderError::Terminal`] or
/// [`ProviderError::Forbidden`] with the provider's reason: the task's create becomes
/// `refused` and is never retried.
#[async_trait]
pub trait CreateProvider: Send + Sync {
    /// How long after a create whose answer was lost [`find_created`](Self::find_created)
    /// can be trusted to see the object (a search index's lag): the engine does not look
    /// sooner, so a lookup that runs too early never makes a second object. Default: zero
    /// (a direct lookup, as Asana's `external:` id).
    fn lookup_delay(&self, ctx: &ProviderContext) -> std::time::Duration {
        let _ = ctx;
        std::time::Duration::ZERO
    }

    /// Creates the object with the marker, and answers its state (key, URL, fields as
    /// created). When the answer is lost, call [`find_created`](Self::find_created) before
    /// creating again.
    async fn create_task(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
    ) -> Result<RemoteTask, ProviderError>;

    /// The object carrying `draft.marker`, among the integration's own creations since
    /// `since_ms` (epoch ms, the start of the first call whose answer was lost), if one
    /// exists.
    async fn find_created(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
        since_ms: i64,
    ) -> Result<Option<RemoteTask>, ProviderError>;
}
