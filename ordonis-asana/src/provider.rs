//! [`AsanaProvider`]: the `ordonis_core::Provider` implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ordonis_core::{
    ApiAuth, Capabilities, ChangeHint, ConfigToCheck, FieldPatch, FieldValue, InvalidInput,
    ListPage, ListRequest, ObjectKey, Provider, ProviderContext, ProviderError, ProviderKind,
    PushOutcome, RemoteTask, RepairProvider, ValueCheck, WebhookAuth, WebhookCheck, WebhookReport,
    WebhookRequest,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::{AsanaClient, ConcurrencyLimits, DEFAULT_BASE_URL, http_client};
use crate::config::AsanaOptions;
use crate::error::AsanaError;
use crate::normalize::{fields_patch, modified_at_ms};
use crate::push::{Pusher, status_refusal};
use crate::webhook::{
    self, HOOK_SECRET_HEADER, SIGNATURE_HEADER, TASK, handshake, is_unsigned_heartbeat,
    verify_signature,
};

/// The Asana provider. One value serves every Asana integration.
///
/// Options are read from [`ProviderContext::options`] as [`AsanaOptions`]; the API token is
/// `secrets.api_auth` (`ApiAuth::Bearer`: a personal access token or an OAuth access token);
/// the base URL is the context's (empty means [`DEFAULT_BASE_URL`]).
///
/// Concurrency caps are shared by every call made with the same token; enum options of the
/// priority and status fields are resolved by name once and cached per integration (and
/// refreshed when a name is not found).
pub struct AsanaProvider {
    http: reqwest::Client,
    caps: (usize, usize),
    limits: Mutex<HashMap<String, Arc<ConcurrencyLimits>>>,
    push: Pusher,
    unsigned_heartbeats: bool,
    max_response: usize,
}

impl fmt::Debug for AsanaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsanaProvider")
            .field("caps", &self.caps)
            .field("unsigned_heartbeats", &self.unsigned_heartbeats)
            .finish_non_exhaustive()
    }
}

impl AsanaProvider {
    /// A provider with the default HTTP client and Asana's concurrency caps.
    pub fn new() -> Result<Self, AsanaError> {
        Ok(Self::with_http(http_client()?))
    }

    /// A provider over a caller-supplied `reqwest` client. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, as [`crate::client::http_client`] does:
    /// a client that follows redirects re-sends requests, credentials and bodies wherever a
    /// `Location` points; with redirects off a 3xx is [`AsanaError::Redirected`] (terminal).
    pub fn with_http(http: reqwest::Client) -> Self {
        Self {
            http,
            caps: (
                crate::client::MAX_CONCURRENT_READS,
                crate::client::MAX_CONCURRENT_WRITES,
            ),
            limits: Mutex::default(),
            push: Pusher::default(),
            unsigned_heartbeats: true,
            max_response: ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Caps the body of each answer its clients read (default 8 MiB,
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES));
    /// a larger answer fails the call with [`AsanaError::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit;
        self
    }

    /// Sets the concurrent read and write caps per token (Asana's are 50 and 15).
    pub fn with_concurrency(mut self, reads: usize, writes: usize) -> Self {
        self.caps = (reads.max(1), writes.max(1));
        self
    }

    /// Whether an unsigned `{"events":[]}` heartbeat is accepted (default: yes; Asana does
    /// not document whether heartbeats are signed, and one that is signed is always checked).
    /// Only a body that is exactly a heartbeat passes
    /// ([`crate::webhook::is_unsigned_heartbeat`]), and the engine
    /// answers it without storing anything.
    pub fn accept_unsigned_heartbeats(mut self, yes: bool) -> Self {
        self.unsigned_heartbeats = yes;
        self
    }

    fn limits_for(&self, token: &str) -> Arc<ConcurrencyLimits> {
        let id = hex::encode(Sha256::digest(token.as_bytes()));
        let Ok(mut map) = self.limits.lock() else {
            return Arc::new(ConcurrencyLimits::new(self.caps.0, self.caps.1));
        };
        map.entry(id)
            .or_insert_with(|| Arc::new(ConcurrencyLimits::new(self.caps.0, self.caps.1)))
            .clone()
    }

    /// A REST client for an integration, sharing the caps of its token.
    pub fn client(&self, ctx: &ProviderContext) -> Result<AsanaClient, AsanaError> {
        let auth = ctx.secrets.api_auth.as_ref().ok_or_else(|| {
            AsanaError::Config("the integration has no Asana API token".to_owned())
        })?;
        let base = if ctx.base_url.trim().is_empty() {
            DEFAULT_BASE_URL
        } else {
            &ctx.base_url
        };
        let client = AsanaClient::new(self.http.clone(), base, auth)?
            .with_max_response_bytes(self.max_response);
        let limits = match auth {
            ApiAuth::Bearer { token } => self.limits_for(token),
            ApiAuth::Basic { .. } => return Ok(client),
        };
        Ok(client.with_limits(limits))
    }

    /// The integration's options.
    pub fn options(ctx: &ProviderContext) -> Result<AsanaOptions, AsanaError> {
        AsanaOptions::from_json(&ctx.options).map_err(|e| AsanaError::Config(e.to_string()))
    }
}

fn header<'a>(req: &'a WebhookRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[async_trait]
impl Provider for AsanaProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::new("asana")
    }

    /// Asana's webhooks start with an `X-Hook-Secret` handshake; the delivery signature is
    /// kept (Asana sends no delivery id or retry count).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            webhook_handshake: true,
            kept_headers: &[SIGNATURE_HEADER],
            object_type: crate::webhook::TASK,
        }
    }

    /// The options parse as [`AsanaOptions`]; the scope is `null` (webhook-only) or
    /// `{"projects": ["<gid>", …]}` with at least one project; the credentials are a bearer
    /// token (a personal access token or an OAuth access token).
    fn check_config(&self, config: &ConfigToCheck<'_>) -> Result<(), InvalidInput> {
        if let Some(auth) = config.auth
            && !matches!(auth, ApiAuth::Bearer { .. })
        {
            return Err(InvalidInput::new(
                "auth",
                "asana does not take this kind of credentials: it takes a bearer token",
            ));
        }
        AsanaOptions::from_json(config.options)?;
        if !config.scope.is_null() {
            crate::repair::scope_projects(config.scope)?;
        }
        Ok(())
    }

    /// Asana has `completed` and, where the integration maps one, an in-progress rule: a
    /// status name outside those is refused at once rather than coerced ("Blocked" would
    /// become a plain incomplete task). A description comes back from Asana in the
    /// converter's canonical Markdown.
    fn check_value(&self, ctx: &ProviderContext, value: &FieldValue) -> ValueCheck {
        match value {
            FieldValue::Status(s) => match status_refusal(ctx, s) {
                Some(reason) => ValueCheck::Refuse(reason),
                None => ValueCheck::Accept,
            },
            // Markdown that does not convert has no echo form: its push refuses (the merge
            // says why), so no echo of it will come back.
            FieldValue::Description(md) => match crate::rich_text::normalize_markdown(md) {
                Ok(form) => ValueCheck::AcceptAs(FieldValue::Description(form)),
                Err(_) => ValueCheck::Accept,
            },
            _ => ValueCheck::Accept,
        }
    }

    fn repair(&self) -> Option<&dyn RepairProvider> {
        Some(self)
    }

    fn comments(&self) -> Option<&dyn ordonis_core::CommentProvider> {
        Some(self)
    }

    fn links(&self) -> Option<&dyn ordonis_core::LinkProvider> {
        Some(self)
    }

    fn creates(&self) -> Option<&dyn ordonis_core::CreateProvider> {
        Some(self)
    }

    fn accounts(&self) -> Option<&dyn ordonis_core::AccountProvider> {
        Some(self)
    }

    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError> {
        if let Some(secret) = req
            .headers
            .get(HOOK_SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            return handshake(secret);
        }
        if let Some(sig) = header(req, SIGNATURE_HEADER) {
            return verify_signature(sig, &ctx.secrets.webhook_secrets, req.body);
        }
        if self.unsigned_heartbeats && is_unsigned_heartbeat(req.body) {
            return Ok(WebhookAuth::UnsignedHeartbeat);
        }
        Err(ProviderError::Unauthenticated(
            "missing X-Hook-Signature (or X-Hook-Secret for a handshake)".to_owned(),
        ))
    }

    fn parse_webhook(
        &self,
        _ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError> {
        webhook::parse(req.body)
    }

    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError> {
        if key.object_type != TASK {
            return Err(ProviderError::BadInput(format!(
                "Asana objects of type {:?} are not synced",
                key.object_type
            )));
        }
        let opts = Self::options(ctx)?;
        let client = self.client(ctx)?;
        let task = match client.get_task(&key.external_id).await {
            Ok(t) => t,
            // 403 is not deletion: the token cannot read the task (a narrow token scope, the
            // account removed from a private project). The task stays; this event fails
            // with the reason, and a later event whose fetch works syncs it again.
            Err(AsanaError::Forbidden { message, .. }) => {
                tracing::warn!(
                    integration_id = %ctx.integration_id,
                    task = %key.external_id,
                    "Asana answered 403 for the task: kept, not synced until readable again"
                );
                return Err(ProviderError::Forbidden(format!(
                    "Asana refused to show task {} to this integration's token (403: {message}): the \
                     token's scope or the account's project membership no longer covers it; the \
                     task is kept and syncs again once it is readable",
                    key.external_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // Where the task belongs now decides, never the event that named it.
        let scope = crate::scope::AsanaScope::parse(&ctx.scope)?;
        if let Some(why) = scope.outside(&task) {
            return Err(ProviderError::OutOfScope(format!(
                "task {}: {why}",
                key.external_id
            )));
        }
        Ok(RemoteTask {
            key: key.clone(),
            fields: fields_patch(&task, &opts),
            modified_at_ms: modified_at_ms(&task).unwrap_or(0),
            url: task
                .get("permalink_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            marker: crate::create::marker_of(&task),
        })
    }

    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        let opts = Self::options(ctx)?;
        let client = self.client(ctx)?;
        let gid = crate::client::check_gid(&key.external_id)?;
        self.push.push(ctx, &client, &opts, gid, patch).await
    }
}

#[async_trait]
impl RepairProvider for AsanaProvider {
    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError> {
        crate::repair::list_changes(&self.client(ctx)?, ctx, req).await
    }

    async fn check_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        crate::repair::check_webhooks(&self.client(ctx)?, check).await
    }

    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        crate::repair::register_webhooks(&self.client(ctx)?, check).await
    }

    async fn list_ids(
        &self,
        ctx: &ProviderContext,
        req: &ordonis_core::IdsRequest<'_>,
    ) -> Result<Option<ordonis_core::IdsPage>, ProviderError> {
        crate::sweep::list_ids(&self.client(ctx)?, req)
            .await
            .map(Some)
    }

    async fn delete_webhooks(
        &self,
        ctx: &ProviderContext,
        ids: &[String],
    ) -> Result<(), ProviderError> {
        crate::sweep::delete_webhooks(&self.client(ctx)?, ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_signature_header_and_takes_a_handshake() -> Result<(), AsanaError> {
        let p = AsanaProvider::new()?;
        assert_eq!(p.capabilities().kept_headers, ["x-hook-signature"]);
        assert!(p.capabilities().webhook_handshake);
        assert!(p.repair().is_some());
        assert!(p.creates().is_some());
        assert!(p.accounts().is_some());
        Ok(())
    }

    #[test]
    fn config_checks_name_the_part() -> Result<(), AsanaError> {
        let p = AsanaProvider::new()?;
        let null = Value::Null;
        let basic = ApiAuth::Basic {
            email: "a@b.c".into(),
            api_token: "t".into(),
        };
        let bearer = ApiAuth::Bearer { token: "t".into() };
        let check = |options: &Value, scope: &Value, auth| {
            p.check_config(&ConfigToCheck {
                options,
                scope,
                auth,
            })
            .map_err(|e| e.what)
        };
        assert_eq!(check(&null, &null, Some(&bearer)), Ok(()));
        assert_eq!(check(&null, &null, Some(&basic)), Err("auth".to_owned()));
        let bad_options = serde_json::json!({"no_such_option": 1});
        assert_eq!(check(&bad_options, &null, None), Err("options".to_owned()));
        let no_projects = serde_json::json!({"projects": []});
        assert_eq!(check(&null, &no_projects, None), Err("scope".to_owned()));
        let scope = serde_json::json!({"projects": ["1"]});
        assert_eq!(check(&null, &scope, None), Ok(()));
        Ok(())
    }
}
