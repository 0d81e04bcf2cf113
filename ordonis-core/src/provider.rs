//! The `Provider` contract: what an adapter (Jira, Asana, a test fake) implements.
//!
//! One provider value serves every integration of its kind; each call receives the
//! integration's [`ProviderContext`] (base URL, decrypted credentials, options).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::ProviderState;
use crate::error::ProviderError;
use crate::ids::{IntegrationId, WorkspaceId};
use crate::listing::{ListPage, ListRequest, WebhookCheck, WebhookReport};
use crate::model::{Field, FieldPatch, FieldValue};
// Also reachable here for code inside the crate that names them by this path (store.rs).
pub(crate) use crate::model::{ObjectKey, ProviderKind};
use crate::secrets::IntegrationSecrets;

/// What a provider can do; the engine and the provider suite branch on these, never on names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Webhook payloads carry the object's state (Jira); otherwise it must be fetched (Asana).
    pub webhook_snapshots: bool,
    /// Webhooks answer a handshake before the first delivery (Asana's `X-Hook-Secret`).
    pub webhook_handshake: bool,
    /// Webhooks carry a delivery id to deduplicate on; otherwise the body hash is used.
    pub delivery_ids: bool,
    /// The provider can push field changes.
    pub push: bool,
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
}

impl fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebhookAuth::Verified { method } => write!(f, "Verified({method})"),
            WebhookAuth::Handshake { .. } => f.write_str("Handshake([REDACTED])"),
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
}

/// What a webhook says happened to an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HintKind {
    /// Created or changed: apply the snapshot (or fetch it).
    Changed,
    /// Deleted: the task becomes a tombstone.
    Deleted,
    /// Recognised and deliberately not applied (a comment, a heartbeat).
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

/// A provider adapter.
///
/// Implementations classify every failure as a [`ProviderError`] variant; the engine retries
/// `Retryable`, pauses the integration on `RateLimited`, and never retries the rest.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// The provider's name.
    fn kind(&self) -> ProviderKind;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// The request headers worth storing with each webhook event (lowercase names): the
    /// provider's delivery id, retry count, signature and the like. `content-type` and
    /// `user-agent` are always kept; other headers are dropped. Default: none.
    fn kept_headers(&self) -> &[&str] {
        &[]
    }

    /// Checks an integration's provider options (`IntegrationConfig::options`) when the
    /// integration is created or changed: an adapter parses them into its own typed options
    /// and names what is wrong. Default: `null` or any JSON object.
    fn check_options(&self, options: &serde_json::Value) -> Result<(), String> {
        if options.is_null() || options.is_object() {
            Ok(())
        } else {
            Err("options must be an object".to_owned())
        }
    }

    /// Whether the provider's API takes this kind of credentials. Default: any.
    fn accepts_auth(&self, auth: &crate::secrets::ApiAuth) -> bool {
        let _ = auth;
        true
    }

    /// Whether the integration whose provider state this is accepts a webhook handshake
    /// ([`WebhookAuth::Handshake`]) now; the engine refuses one otherwise. Default: never.
    ///
    /// A provider with [`Capabilities::webhook_handshake`] implements this together with
    /// [`set_handshake_expected`](Self::set_handshake_expected).
    fn handshake_expected(&self, state: &ProviderState) -> bool {
        let _ = state;
        false
    }

    /// Records in the provider state whether a handshake is expected. The engine sets it when
    /// an integration of a provider with [`Capabilities::webhook_handshake`] is created
    /// without a webhook secret and when the host calls `Engine::expect_handshake`, and
    /// clears it once a handshake's secret is adopted. Default: records nothing.
    fn set_handshake_expected(&self, state: &mut ProviderState, expected: bool) {
        let _ = (state, expected);
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
    /// syncing), `Terminal` when the credentials may not read it (the task is kept).
    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError>;

    /// The form in which this provider will report `value` after it was written, when that
    /// differs from the value itself: a rich-text description after the provider's format
    /// round trip. The engine records it with the pushed value before pushing, so the echo
    /// is recognised as ours and settles the field. Must be cheap and make no network call.
    /// Default: none (the provider reports what it was sent).
    fn echo_form(&self, ctx: &ProviderContext, value: &FieldValue) -> Option<FieldValue> {
        let _ = (ctx, value);
        None
    }

    /// Why this provider can never hold `value`, when that is known without asking it (a
    /// status name its workflow model cannot represent). The task API refuses such a change
    /// at once, in its answer and in the ledger, instead of pushing it and coercing it.
    /// Default: nothing is known in advance.
    fn refuse_in_advance(&self, ctx: &ProviderContext, value: &FieldValue) -> Option<String> {
        let _ = (ctx, value);
        None
    }

    /// Checks an integration's sync scope (`IntegrationConfig::scope`) when the integration
    /// is created or changed: which objects its backfill imports and its reconciliation
    /// watches. `Err` names what is wrong (a Jira integration needs `{"jql": …}`). Default:
    /// `null` or any JSON object.
    fn check_scope(&self, scope: &serde_json::Value) -> Result<(), String> {
        if scope.is_null() || scope.is_object() {
            Ok(())
        } else {
            Err("scope must be an object".to_owned())
        }
    }

    /// One page of the objects that changed in a scope since a cursor (see
    /// [`ListRequest`]): what backfill and reconciliation run on. Default: the provider
    /// cannot list (`Terminal`), so an integration of it only reacts to webhooks.
    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError> {
        let _ = (ctx, req);
        Err(ProviderError::Terminal(format!(
            "{} cannot list changes",
            self.kind()
        )))
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
        Err(ProviderError::Terminal(format!(
            "{} cannot register webhooks",
            self.kind()
        )))
    }

    /// The values a push of `patch` will pass through on its way (the intermediate statuses
    /// of a planned workflow path), asked just before the push: the engine records them with
    /// the pushed values first, so a hop's webhook processed while the push still runs is
    /// recognised as ours, not taken for a conflict. Default: none.
    async fn planned_passes(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<Vec<FieldValue>, ProviderError> {
        let _ = (ctx, key, patch);
        Ok(Vec::new())
    }

    /// Writes field values to an object.
    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError>;
}

/// A provider time (milliseconds since the epoch) as a date-time, when representable.
pub(crate) fn ms_to_datetime(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
