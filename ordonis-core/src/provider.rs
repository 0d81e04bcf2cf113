//! The `Provider` contract: what an adapter (Jira, Asana, a test fake) implements.
//!
//! One provider value serves every integration of its kind; each call receives the
//! integration's [`ProviderContext`] (base URL, decrypted credentials, options).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{InvalidInput, ProviderError};
use crate::ids::{IntegrationId, WorkspaceId};
use crate::listing::{IdsPage, IdsRequest, ListPage, ListRequest, WebhookCheck, WebhookReport};
use crate::model::{Field, FieldPatch, FieldValue};
// Also reachable here for code inside the crate that names them by this path (store.rs).
pub(crate) use crate::model::{ObjectKey, ProviderKind};
use crate::secrets::IntegrationSecrets;

/// Facts about a provider that the engine reads. Optional abilities are not flags: they are
/// the traits a provider hands out ([`Provider::repair`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Webhooks answer a handshake before the first delivery (Asana's `X-Hook-Secret`): an
    /// integration created without a webhook secret expects one.
    pub webhook_handshake: bool,
    /// The request headers worth storing with each webhook event (lowercase names): the
    /// provider's delivery id, retry count, signature and the like. `content-type` and
    /// `user-agent` are always kept; other headers are dropped.
    pub kept_headers: &'static [&'static str],
    /// The type of the provider's objects that tasks map to (Jira `issue`, Asana `task`): a
    /// task linked to an existing object by its id is keyed with it.
    pub object_type: &'static str,
}

impl Default for Capabilities {
    /// No handshake, no extra headers kept, objects of type `task`.
    fn default() -> Self {
        Self {
            webhook_handshake: false,
            kept_headers: &[],
            object_type: "task",
        }
    }
}

/// An integration's settings as a provider checks them, at creation and on every change.
#[derive(Clone, Copy, Debug)]
pub struct ConfigToCheck<'a> {
    /// The provider options (`IntegrationConfig::options`).
    pub options: &'a serde_json::Value,
    /// The sync scope (`IntegrationConfig::scope`); `null` when the integration only reacts
    /// to webhooks.
    pub scope: &'a serde_json::Value,
    /// The API credentials, when given.
    pub auth: Option<&'a crate::secrets::ApiAuth>,
}

/// What a provider says of a value CollabHub wants it to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueCheck {
    /// It will hold and report the value as it is.
    Accept,
    /// It will hold the value but report it in this form (a rich-text description after
    /// the provider's format round trip): its echo is recognised in this form too.
    AcceptAs(FieldValue),
    /// It can never hold the value (a status its workflow model cannot represent): the
    /// change is refused at once, with this reason, instead of being pushed and coerced.
    Refuse(String),
}

impl ValueCheck {
    /// The form the value will be reported in, when it differs from the value.
    pub fn echo_form(self) -> Option<FieldValue> {
        match self {
            ValueCheck::AcceptAs(v) => Some(v),
            ValueCheck::Accept | ValueCheck::Refuse(_) => None,
        }
    }
}

/// What a push will do on its way, known before it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushPlan {
    /// The values the push will pass through (the intermediate statuses of a planned
    /// workflow path): the engine records them with the pushed values first, so a hop's
    /// webhook processed while the push still runs is recognised as ours.
    pub passes: Vec<FieldValue>,
}

/// What a provider call needs to know about one integration.
#[derive(Clone)]
pub struct ProviderContext {
    /// The integration.
    pub integration_id: IntegrationId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// API base URL (`https://acme.atlassian.net`), or a fake server in tests.
    pub base_url: String,
    /// Decrypted secrets.
    pub secrets: IntegrationSecrets,
    /// Provider-specific, non-secret options (status mapping, custom field ids, ...).
    pub options: serde_json::Value,
    /// What the integration syncs ([`crate::IntegrationConfig::scope`]; `null`: whatever its
    /// webhooks send). A fetch answers [`ProviderError::OutOfScope`] for an object outside it.
    pub scope: serde_json::Value,
}

impl fmt::Debug for ProviderContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderContext")
            .field("integration_id", &self.integration_id)
            .field("workspace_id", &self.workspace_id)
            .field("base_url", &self.base_url)
            .field("secrets", &self.secrets)
            .field("options", &self.options)
            .field("scope", &self.scope)
            .finish()
    }
}

/// An incoming webhook request, as the host's HTTP framework received it.
#[derive(Clone, Copy, Debug)]
pub struct WebhookRequest<'a> {
    /// HTTP method.
    pub method: &'a http::Method,
    /// Headers.
    pub headers: &'a http::HeaderMap,
    /// The exact body bytes (signatures are over bytes).
    pub body: &'a [u8],
}

/// A verified webhook request.
#[derive(Clone, PartialEq, Eq)]
pub enum WebhookAuth {
    /// The signature (or token) checked out; `method` names the check (`hmac-sha256`, `jwt`).
    Verified {
        /// The check that passed.
        method: &'static str,
    },
    /// A handshake (Asana `X-Hook-Secret`): answer with these headers and adopt the secret.
    Handshake {
        /// Headers to echo in the 200 answer.
        reply_headers: Vec<(String, String)>,
        /// The webhook secret the provider just issued.
        secret: String,
    },
    /// An unsigned heartbeat the provider accepts as such (Asana's `{"events":[]}`, whose
    /// signing is undocumented): answered `200`, and nothing of it is stored, since nothing
    /// of it is authenticated. A provider returns this only for a body that is exactly a
    /// heartbeat and a few dozen bytes long.
    UnsignedHeartbeat,
}

impl fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookAuth::Verified { method } => write!(f, "Verified({method})"),
            WebhookAuth::Handshake { .. } => f.write_str("Handshake([REDACTED])"),
            WebhookAuth::UnsignedHeartbeat => f.write_str("UnsignedHeartbeat"),
        }
    }
}

/// The provider account that made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteActor {
    /// Account id (Jira `accountId`, Asana user gid).
    pub account_id: String,
    /// Display name, when given.
    #[serde(default)]
    pub display_name: Option<String>,
    /// E-mail, when the provider shares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Person or agent (Jira `accountType: "app"`, Asana `resource_type: "agent"`).
    #[serde(default)]
    pub kind: crate::people::PersonKind,
}

impl RemoteActor {
    /// A person's account known by its id only.
    pub fn account(account_id: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            display_name: None,
            email: None,
            kind: crate::people::PersonKind::Human,
        }
    }
}

/// What a webhook says happened to an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HintKind {
    /// Created or changed: apply the snapshot (or fetch it).
    Changed,
    /// Deleted: the task becomes a tombstone.
    Deleted,
    /// Missing from its scope's listing (the id sweep): the engine fetches it, and a 404
    /// tombstones the task, an object found outside the scope (the fetch's `OutOfScope`, or
    /// [`RepairProvider::scope_check`]) takes it out of scope, one still inside is applied.
    Missing,
    /// A comment on the object was written, edited or deleted: the engine reads it
    /// ([`CommentProvider::fetch_comment`](crate::CommentProvider::fetch_comment)) and syncs
    /// the conversation; the object's fields are not read for it.
    Comment {
        /// The provider's id of the comment.
        comment_id: String,
        /// The event says it was deleted (a deletion wins over any later state).
        deleted: bool,
    },
    /// Recognised and deliberately not applied (a heartbeat, an activity record).
    Ignored {
        /// Why.
        reason: String,
    },
}

/// One field change as a webhook described it (informational; the snapshot is what is applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The mapped field, or `None` for a field Ordonis does not sync.
    pub field: Option<Field>,
    /// The provider's field name.
    pub provider_field: String,
    /// Old value as text.
    pub from: Option<String>,
    /// New value as text.
    pub to: Option<String>,
}

/// The state of a remote object, mapped into Ordonis fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTask {
    /// The object.
    pub key: ObjectKey,
    /// Mapped field values the provider holds (fields it does not have are absent).
    pub fields: FieldPatch,
    /// Provider time of this state, milliseconds since the epoch (`updated`, `modified_at`).
    pub modified_at_ms: i64,
    /// Browser link.
    #[serde(default)]
    pub url: Option<String>,
    /// Our task's id, for an object created from CollabHub, where the provider keeps the
    /// create's marker and the read includes it ([`crate::CreateProvider`]): the object's
    /// first webhook then joins the task it was created for instead of importing a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

/// What one webhook says about one object: the unit the engine processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeHint {
    /// The object (its external id is the inbox row's object key).
    pub key: ObjectKey,
    /// The provider's delivery id, when it sends one.
    #[serde(default)]
    pub delivery_id: Option<String>,
    /// What happened.
    pub kind: HintKind,
    /// Provider time of the event, ms since the epoch.
    #[serde(default)]
    pub source_time_ms: Option<i64>,
    /// Who did it.
    #[serde(default)]
    pub actor: Option<RemoteActor>,
    /// The object's state as of the event, when the payload carries it.
    #[serde(default)]
    pub snapshot: Option<RemoteTask>,
    /// The changes the payload lists.
    #[serde(default)]
    pub changes: Vec<FieldChange>,
}

/// The answer to a push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Fields the provider accepted.
    pub applied: Vec<Field>,
    /// Fields the provider refused, with the reason (a Jira transition that needs a screen, an
    /// unknown enum option). Recorded, never retried.
    pub refused: Vec<(Field, String)>,
    /// Fields the provider already held as asked, so nothing was written and no echo will
    /// come: the push is confirmed at once.
    pub settled: Vec<Field>,
    /// Values of accepted fields in the form the provider will report them, when it differs
    /// from what was asked (a status reached by a transition: "Done" asked, "Closed"
    /// reached). Their echo confirms the push.
    pub echo_as: Vec<FieldValue>,
    /// Values the provider passed through on the way (the statuses of intermediate
    /// transitions): their webhooks are ours too, and confirm nothing yet.
    pub passed_through: Vec<FieldValue>,
}

/// A provider adapter: the required core every provider implements. Optional abilities are
/// separate traits it hands out through accessors ([`Provider::repair`]), the way
/// `object_store` splits off `MultipartStore`: a provider that lacks one returns `None`, and a
/// wrapper forwards an ability in one line instead of re-implementing it.
///
/// Implementations classify every failure as a [`ProviderError`] variant; the engine retries
/// `Retryable`, pauses the integration on `RateLimited`, and never retries the rest.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// The provider's name.
    fn kind(&self) -> ProviderKind;

    /// Facts the engine reads. Default: no handshake, no extra headers kept.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Checks an integration's settings when it is created or changed: an adapter parses
    /// the options into its own typed options, the scope into its own scope, and says
    /// whether its API takes these credentials. The error names the part (`options`,
    /// `scope`, `auth`) and what is wrong. Default: options and scope are `null` or a JSON
    /// object, any credentials.
    fn check_config(&self, config: &ConfigToCheck<'_>) -> Result<(), InvalidInput> {
        if !(config.options.is_null() || config.options.is_object()) {
            return Err(InvalidInput::new("options", "must be an object"));
        }
        if !(config.scope.is_null() || config.scope.is_object()) {
            return Err(InvalidInput::new("scope", "must be an object"));
        }
        Ok(())
    }

    /// Checks a webhook request before anything is stored: a signature, a token, or a
    /// handshake. Must compare secrets in constant time and accept any current secret.
    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError>;

    /// Parses a verified body into one hint per object. An empty list is a heartbeat.
    /// Unknown fields are ignored; a body that cannot be understood is `BadInput`.
    fn parse_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError>;

    /// Fetches the current state of an object: `NotFound` when it is gone (the task becomes
    /// a tombstone), `OutOfScope` when it exists outside `ctx.scope` (the task stops
    /// syncing), `Forbidden` when the credentials may not read it (the task is kept).
    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError>;

    /// What this provider says of a value CollabHub wants it to hold, known without asking
    /// it: accepted as is, accepted but reported in another form (recorded with the pushed
    /// value so its echo settles the field), or refused with a reason (the task API refuses
    /// the change at once). Must be cheap and make no network call. Default: accepted.
    fn check_value(&self, ctx: &ProviderContext, value: &FieldValue) -> ValueCheck {
        let _ = (ctx, value);
        ValueCheck::Accept
    }

    /// Plans a push of `patch`, just before it runs (see [`PushPlan`]). Default: nothing
    /// planned.
    async fn plan_push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushPlan, ProviderError> {
        let _ = (ctx, key, patch);
        Ok(PushPlan::default())
    }

    /// Writes field values to an object.
    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError>;

    /// The repair loop (listing changes, webhook health and registration), when the
    /// provider can list. Default: none, so an integration of it only reacts to webhooks.
    fn repair(&self) -> Option<&dyn RepairProvider> {
        None
    }

    /// The conversation on a task (read, post, edit, delete comments), when the provider
    /// has one. Default: none, so an integration of it syncs fields only.
    fn comments(&self) -> Option<&dyn crate::comments::CommentProvider> {
        None
    }

    /// Links on a task (create or update, list, delete), where the provider shows links:
    /// agent sessions and their artifacts appear there. Default: none, so an integration of
    /// it shows no links.
    fn links(&self) -> Option<&dyn crate::links::LinkProvider> {
        None
    }

    /// Creating tasks in the provider from CollabHub, exactly once. Default: none, so a
    /// create through an integration of it is refused with that reason.
    fn creates(&self) -> Option<&dyn crate::create::CreateProvider> {
        None
    }

    /// Reading accounts (name, e-mail, person or agent) for the people directory. Default:
    /// none, so accounts are known only by what webhooks and fetches say.
    fn accounts(&self) -> Option<&dyn crate::people::AccountProvider> {
        None
    }

    /// The API budget this provider's answers for the integration last showed, in this
    /// process (Jira's quota headers, its limits met): the engine paces the repair loop by
    /// it and shows it. Must be cheap and make no network call. Default: none known.
    fn budget(&self, integration: IntegrationId) -> Option<crate::budget::ApiBudget> {
        let _ = integration;
        None
    }
}

/// The repair loop's provider calls: what backfill and reconciliation list, and the health
/// and registration of the integration's webhooks. Reached through [`Provider::repair`].
#[async_trait]
pub trait RepairProvider: Send + Sync {
    /// One page of the objects that changed in a scope since a cursor (see
    /// [`ListRequest`]).
    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError>;

    /// Whether an object is in the integration's scope: `None` when it is, else why not.
    /// Asked when a task is linked to an existing object. Default: in scope (a provider whose
    /// [`Provider::fetch_task`] answers `OutOfScope` itself needs nothing more).
    async fn scope_check(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<Option<String>, ProviderError> {
        let _ = (ctx, key);
        Ok(None)
    }

    /// Checks (and where the provider allows, renews) the integration's webhooks: called by
    /// every reconcile run. Default: nothing is known.
    async fn check_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        let _ = (ctx, check);
        Ok(WebhookReport::default())
    }

    /// Registers the integration's webhooks (`register_webhook: true` and
    /// [`check_webhooks`](Self::check_webhooks) said `Missing`), returning the report with
    /// their ids. The engine expects a handshake while this runs (Asana completes one
    /// during the call). Default: the provider cannot (`Terminal`).
    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        let _ = (ctx, check);
        Err(ProviderError::Terminal(
            "this provider cannot register webhooks".to_owned(),
        ))
    }

    /// One page of the ids of every object in the scope, for the id sweep: a mapped object
    /// missing from them is fetched (a deletion whose webhook was lost, a move out of the
    /// scope). `None` when the provider cannot list ids (the default): no sweep runs.
    async fn list_ids(
        &self,
        ctx: &ProviderContext,
        req: &IdsRequest<'_>,
    ) -> Result<Option<IdsPage>, ProviderError> {
        let _ = (ctx, req);
        Ok(None)
    }

    /// Deletes webhooks Ordonis registered (their project left the scope, or the integration
    /// is disabled). One already gone counts as deleted. Default: nothing to do.
    async fn delete_webhooks(
        &self,
        ctx: &ProviderContext,
        ids: &[String],
    ) -> Result<(), ProviderError> {
        let _ = (ctx, ids);
        Ok(())
    }
}

/// A provider time (milliseconds since the epoch) as a date-time, when representable.
pub(crate) fn ms_to_datetime(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
